"""De-duplicate queries: case, spacing, punctuation and near-identical wording fold together."""

from __future__ import annotations

import re
import unicodedata

FILLER = {"a", "an", "the", "of", "for", "and", "with", "my", "dog", "dogs", "photo", "photos", "picture", "pictures"}
PLURAL = re.compile(r"(?<=[a-z]{3})s\b")


def normalise(text: str) -> str:
    """The key two queries share when they say the same thing in slightly different words."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"[^\w\s]", " ", text)
    words = [PLURAL.sub("", w) for w in text.split()]
    kept = [w for w in words if w not in FILLER] or words
    return " ".join(sorted(set(kept)))


def clean(text: str) -> str:
    """The query as stored: control characters dropped, spacing folded, quotes trimmed."""
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C" or ch in " \t\n")
    return re.sub(r"\s+", " ", text).strip().strip("\"'").strip()
