"""What a host's robots.txt lets us do, read with Protego (RFC 9309).

The standard library's ``urllib.robotparser`` predates RFC 9309: it ignores ``*`` and ``$``
wildcards, takes the first matching rule instead of the longest, and reads ``Crawl-delay`` only
for an exact agent. Protego (Scrapy's parser) implements the RFC: longest match wins, ``Allow``
wins a tie, wildcards, the agent's product token matched case-insensitively, and ``Crawl-delay``.

How an answer becomes a policy follows RFC 9309 §2.3.1: a 4xx (no robots.txt) allows everything,
a 5xx or an answer we cannot get forbids everything (the site may be down: assume the worst).
"""

from __future__ import annotations

from dataclasses import dataclass

from protego import Protego


@dataclass(frozen=True)
class Robots:
    rules: Protego | None = None  # None: everything allowed, or everything forbidden (below)
    forbid_all: bool = False

    @classmethod
    def from_answer(cls, status: int | None, text: str = "") -> Robots:
        """The policy of a robots.txt answer (``status`` None: none could be had)."""
        if status is None or status >= 500:
            return cls(forbid_all=True)
        if status >= 400:
            return cls()
        return cls(rules=Protego.parse(text))

    def allows(self, url: str, user_agent: str) -> bool:
        if self.forbid_all:
            return False
        return self.rules is None or bool(self.rules.can_fetch(url, user_agent))

    def crawl_delay(self, user_agent: str) -> float:
        """Seconds the site asks between two requests (0 when it says nothing)."""
        delay = self.rules.crawl_delay(user_agent) if self.rules is not None else None
        return float(delay) if delay and delay > 0 else 0.0
