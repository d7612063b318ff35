"""What an analysis says about one pair, whichever model said it.

A ``Verdict`` carries every label with its confidence (0-1), where it came from (``vlm``: a
vision-language model saw both images; ``model``: the offline rules over the default model's
facts), the model and prompt version, the raw model output, the labels the analysis could not
give (``unavailable``), and, when the pair should leave the review queue, why: ``reject_code``
(the pairs feature's reason code) and ``reject_reason`` (the same in words). A rejection is a
verdict, not a deletion: a person can reverse it later.
"""

from __future__ import annotations

from typing import Literal

import msgspec

Order = Literal["first", "second"]
RejectCode = Literal["not_a_dog", "not_same_dog", "not_before_after"]


class LabelScore(msgspec.Struct, frozen=True):
    name: str
    confidence: float


class Verdict(msgspec.Struct, kw_only=True):
    same_dog: bool | None
    same_dog_confidence: float = 0.0
    is_dog: bool | None
    is_grooming_before_after: bool | None
    before_after_confidence: float = 0.0
    before: Order | None  # which of the pair's two images is the "before" one
    order_confidence: float = 0.0
    breed: str | None
    breed_confidence: float = 0.0
    services: list[LabelScore] = msgspec.field(default_factory=list)
    caption: str | None = None
    source: Literal["vlm", "model"]
    model: str
    prompt_version: str | None = None
    raw: str = ""  # the model's own output (VLM: its JSON answer; offline: the facts it used)
    unavailable: list[str] = msgspec.field(default_factory=list)
    reject_code: RejectCode | None = None
    reject_reason: str | None = None  # in words, for the pair's history and the reviewers


class AnalysisFailed(Exception):
    """The model gave no usable answer; the message says why in words (stored on the pair)."""

    def __init__(self, reason: str, raw: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw


def rejection(*reasons: tuple[RejectCode, str] | None) -> tuple[RejectCode | None, str | None]:
    """The first reason's code and every reason in words, joined; (None, None) when there is none."""
    found = [r for r in reasons if r is not None]
    if not found:
        return None, None
    return found[0][0], "; ".join(words for _, words in found)
