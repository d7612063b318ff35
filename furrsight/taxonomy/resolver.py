"""Free text → a taxonomy entry, or "unknown": one resolver for model answers, captions, queries.

Names and aliases are folded (case, accents, punctuation, a plural ``s``) and looked up exactly
first; otherwise the closest one by rapidfuzz (its C++ edit-distance scorers: a hand-written
Levenshtein would be 50× slower over 1,500 aliases) counts only at or above ``threshold``, so a
near-miss ("goldendodle", "bernse mountain dog") resolves and anything vaguer says unknown instead of guessing.
``find_in`` spots entries named inside longer text (a caption, a query) by exact phrases only.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from furrsight.taxonomy.schemas import Resolution

MAX_PHRASE_WORDS = 5
MIN_FUZZY_LENGTH = 7  # shorter text is one letter away from too much ("eagle" → "beagle"): exact only


def fold(text: str) -> str:
    """Lower case, no accents, words separated by one space ("Bichon Frisé!" → "bichon frise")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).replace("ß", "ss")
    return " ".join(re.findall(r"[a-z0-9]+", plain))


def _singular(folded: str) -> str:
    """The last word without a plural ending ("golden retrievers" → "golden retriever")."""
    for ending, replacement in (("ies", "y"), ("es", ""), ("s", "")):
        if folded.endswith(ending) and len(folded) > len(ending) + 2:
            return folded[: -len(ending)] + replacement
    return folded


@dataclass(frozen=True)
class Entry:
    id: int
    name: str
    aliases: tuple[str, ...] = ()


class Resolver:
    def __init__(self, entries: Iterable[Entry], threshold: float = 86.0) -> None:
        self.threshold = threshold
        self.names: dict[int, str] = {}
        self.lookup: dict[str, tuple[int, str]] = {}  # folded phrase → (id, the name or alias)
        for entry in entries:
            self.names[entry.id] = entry.name
            for phrase in (entry.name, *entry.aliases):
                folded = fold(phrase)
                for key in (folded, _singular(folded)):
                    if key:
                        self.lookup.setdefault(key, (entry.id, phrase))  # a name wins over a later alias
        self.choices = list(self.lookup)

    def resolve(self, text: str) -> Resolution:
        folded = fold(text)
        hit = self.lookup.get(folded) or self.lookup.get(_singular(folded))
        if hit:
            return Resolution(text=text, id=hit[0], name=self.names[hit[0]], score=100.0, matched=hit[1])
        fuzzy = len(folded) >= MIN_FUZZY_LENGTH
        best = process.extractOne(folded, self.choices, scorer=_score) if fuzzy else None
        if best is None or best[1] < self.threshold:
            return Resolution(text=text, id=None, name=None, score=round(best[1], 1) if best else 0.0, matched=None)
        entry_id, matched = self.lookup[best[0]]
        return Resolution(text=text, id=entry_id, name=self.names[entry_id], score=round(best[1], 1), matched=matched)

    def find_in(self, text: str) -> list[Resolution]:
        """Entries named in ``text`` by a name or alias, longest phrase first, no overlaps."""
        words = fold(text).split()
        found: dict[int, Resolution] = {}
        start = 0
        while start < len(words):
            for size in range(min(MAX_PHRASE_WORDS, len(words) - start), 0, -1):
                phrase = " ".join(words[start : start + size])
                hit = self.lookup.get(phrase) or self.lookup.get(_singular(phrase))
                if hit and len(phrase) > 2:
                    found.setdefault(
                        hit[0], Resolution(text=phrase, id=hit[0], name=self.names[hit[0]], score=100.0, matched=hit[1])
                    )
                    start += size
                    break
            else:
                start += 1
        return list(found.values())


def _score(query: str, choice: str, **_: object) -> float:
    """Plain edit similarity, or word order ignored ("poodle toy"), whichever is higher."""
    return max(fuzz.ratio(query, choice), fuzz.token_sort_ratio(query, choice))
