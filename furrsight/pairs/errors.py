"""What the pair service raises, each with the answer a route gives it."""

from __future__ import annotations

from furrsight.pairs.schemas import HistoryOut, PairOut


class PairError(ValueError):
    """Bad pair input, in words (400)."""


class PairNotFound(LookupError):
    pass


class PairExists(PairError):
    """The two images are a pair already (either way round): 409, naming it."""

    def __init__(self, pair_id: int) -> None:
        super().__init__(f"these two images are pair {pair_id} already")
        self.pair_id = pair_id


class StaleVersion(Exception):
    """A write at a version the pair has moved past: 409 with what changed since."""

    def __init__(self, current: PairOut, changes: list[HistoryOut]) -> None:
        who = ", ".join(sorted({c.user or "the system" for c in changes})) or "someone"
        super().__init__(f"pair {current.id} changed since version you read (now version {current.version}, by {who})")
        self.current = current
        self.changes = changes


class Stale(Exception):
    """A write at a version the pair has moved past (``update_pair``): the caller reads what
    changed since and raises ``StaleVersion``."""

    def __init__(self, version: int) -> None:
        self.version = version
