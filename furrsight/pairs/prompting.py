"""Prompts, the answer's JSON schema, and checking the answer again.

Prompt templates live in ``prompts/<name>-v<N>.md``; the version is the file name without the
suffix (``analyse-v1``) and the newest (highest N) is the default. A template may name
``$services`` (the service vocabulary, comma-separated); breeds are not listed in the prompt: the
schema's enum constrains them while the model writes.

The schema puts the breed and the services as enums from the taxonomy (``breed`` may also be
``"unknown"``), caps the caption's length and the services list, and gives every confidence as an
enum of the 21 values 0, 0.05, ..., 1: llama-cpp-python's grammar does not enforce ``minimum`` /
``maximum`` on numbers, while an enum it does. The decoded answer is validated again with msgspec
(enums, 0-1 ranges, lengths, no service twice) whatever the runtime enforced.
"""

from __future__ import annotations

import re
import string
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from furrsight.pairs.verdict import LabelScore, RejectCode, Verdict, rejection

PROMPTS = Path(__file__).with_name("prompts")
PROMPT_NAME = "analyse"
CAPTION_MAX = 160
CONFIDENCE_STEPS = [round(i * 0.05, 2) for i in range(21)]
UNKNOWN_BREED = "unknown"
Confidence = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class PromptError(ValueError):
    """An unknown prompt version (the message lists the known ones)."""


class AnswerInvalid(ValueError):
    """The decoded answer does not fit the schema; the message says where, in words."""


def prompt_versions(folder: Path = PROMPTS, name: str = PROMPT_NAME) -> list[str]:
    """The shipped versions, oldest first (``analyse-v1``, ``analyse-v2``, ...)."""
    found = [
        (int(m.group(1)), p.stem)
        for p in folder.glob(f"{name}-v*.md")
        if (m := re.fullmatch(rf"{name}-v(\d+)", p.stem))
    ]
    return [stem for _, stem in sorted(found)]


def default_prompt_version(folder: Path = PROMPTS) -> str:
    versions = prompt_versions(folder)
    if not versions:
        raise PromptError(f"no prompt templates in {folder}")
    return versions[-1]


def load_prompt(version: str, folder: Path = PROMPTS) -> str:
    if version not in prompt_versions(folder):
        raise PromptError(f"unknown prompt version {version!r}; known: {', '.join(prompt_versions(folder)) or 'none'}")
    return (folder / f"{version}.md").read_text(encoding="utf-8")


def render_prompt(version: str, services: list[str], folder: Path = PROMPTS) -> str:
    return string.Template(load_prompt(version, folder)).substitute(services=", ".join(services) or "(none)")


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def build_schema(breeds: list[str], services: list[str], caption_max: int = CAPTION_MAX) -> dict[str, Any]:
    """The JSON schema the model's answer is constrained to (caption first: describing the change
    before judging it helps a small model)."""
    confidence = {"type": "number", "enum": CONFIDENCE_STEPS}
    service_names = _unique(services)
    service: dict[str, Any] = {
        "type": "object",
        "properties": {"name": {"type": "string", "enum": service_names} if service_names else {"type": "string"},
                       "confidence": confidence},
        "required": ["name", "confidence"],
    }  # fmt: skip
    properties: dict[str, Any] = {
        "caption": {"type": "string", "minLength": 1, "maxLength": caption_max},
        "is_dog": {"type": "boolean"},
        "same_dog": {"type": "boolean"},
        "same_dog_confidence": confidence,
        "is_grooming_before_after": {"type": "boolean"},
        "before_after_confidence": confidence,
        "before": {"type": "string", "enum": ["first", "second"]},
        "order_confidence": confidence,
        "breed": {"type": "string", "enum": [*_unique([b for b in breeds if b != UNKNOWN_BREED]), UNKNOWN_BREED]},
        "breed_confidence": confidence,
        "services": {"type": "array", "items": service, "maxItems": len(service_names)},
    }
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def _literal(names: tuple[str, ...]) -> Any:
    return Literal[names] if names else Annotated[str, msgspec.Meta(max_length=0)]  # type: ignore[valid-type]


@lru_cache(maxsize=8)
def answer_type(breeds: tuple[str, ...], services: tuple[str, ...], caption_max: int = CAPTION_MAX) -> Any:
    """The msgspec struct an answer must decode into for these vocabularies."""
    service = msgspec.defstruct(
        "Service", [("name", _literal(services)), ("confidence", Confidence)], forbid_unknown_fields=True
    )
    fields: list[tuple[str, Any]] = [
        ("caption", Annotated[str, msgspec.Meta(min_length=1, max_length=caption_max)]),
        ("is_dog", bool),
        ("same_dog", bool),
        ("same_dog_confidence", Confidence),
        ("is_grooming_before_after", bool),
        ("before_after_confidence", Confidence),
        ("before", Literal["first", "second"]),
        ("order_confidence", Confidence),
        ("breed", _literal((*[b for b in breeds if b != UNKNOWN_BREED], UNKNOWN_BREED))),
        ("breed_confidence", Confidence),
        ("services", Annotated[list[service], msgspec.Meta(max_length=len(services))]),  # type: ignore[valid-type]
    ]
    return msgspec.defstruct("Answer", fields, kw_only=True, forbid_unknown_fields=True)


def parse_answer(value: Any, breeds: list[str], services: list[str], caption_max: int = CAPTION_MAX) -> Any:
    """The decoded JSON checked against the vocabularies; ``AnswerInvalid`` says what is wrong."""
    kind = answer_type(tuple(_unique(breeds)), tuple(_unique(services)), caption_max)
    try:
        answer = msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        raise AnswerInvalid(f"the answer does not fit the schema: {exc}") from exc
    named = [s.name for s in answer.services]
    twice = sorted({n for n in named if named.count(n) > 1})
    if twice:
        raise AnswerInvalid(f"the answer names a service more than once: {', '.join(twice)}")
    return answer


def to_verdict(
    answer: Any, *, model: str, prompt_version: str, raw: str, min_reject_confidence: float = 0.5
) -> Verdict:
    """A checked answer as a verdict. The pair is rejected when the model says "no dog", "not the
    same dog" or "not a grooming before/after" with at least ``min_reject_confidence``."""

    def reason(code: RejectCode, said: bool, confidence: float, words: str) -> tuple[RejectCode, str] | None:
        return (
            (code, f"{words} (model confidence {confidence:.2f})")
            if not said and confidence >= min_reject_confidence
            else None
        )

    breed = None if answer.breed == UNKNOWN_BREED else answer.breed
    code, words = rejection(
        None if answer.is_dog else ("not_a_dog", "the model sees no dog in at least one of the images"),
        reason("not_same_dog", answer.same_dog, answer.same_dog_confidence,
               "the model says these are two different dogs"),
        reason("not_before_after", answer.is_grooming_before_after, answer.before_after_confidence,
               "the model says this is not a grooming before/after"),
    )  # fmt: skip
    return Verdict(
        same_dog=answer.same_dog,
        same_dog_confidence=answer.same_dog_confidence,
        is_dog=answer.is_dog,
        is_grooming_before_after=answer.is_grooming_before_after,
        before_after_confidence=answer.before_after_confidence,
        before=answer.before,
        order_confidence=answer.order_confidence,
        breed=breed,
        breed_confidence=answer.breed_confidence if breed else 0.0,
        services=[LabelScore(s.name, s.confidence) for s in answer.services],
        caption=answer.caption.strip() or None,
        source="vlm",
        model=model,
        prompt_version=prompt_version,
        raw=raw,
        unavailable=[] if breed else ["breed"],
        reject_code=code,
        reject_reason=words,
    )
