"""Analysing a pair without a vision-language model: rules over the default model's facts.

Inputs per image (``ImageFacts``): the default model's breed top-k as P(breed | dog) and the
probability that the photo shows a dog; for the pair, the same-dog score (the cosine of the two
image embeddings) and, when mining knows one, an order hint (collage layout or posting order) with
its own, low, confidence. Pure: no model runs here, no database.

Rules (the numbers are the thresholds' defaults):

* **is a dog**: both images' dog probability >= ``min_dog_probability`` (0.5); otherwise the pair
  is rejected (``not_a_dog``), naming the image.
* **same dog**: score >= ``same_dog_reject_below`` (0.45). The confidence is the score clipped to
  0..1 when yes, one minus that when no; a "no" rejects the pair (``not_same_dog``).
* **breed**, with p1(b), p2(b) each image's share for breed b (0 outside its top-k):
  - both top-1 breeds agree: that breed, confidence 1 - (1 - p1)(1 - p2): two independent looks
    at the same dog, so agreement raises it above either image's own;
  - they disagree: the breed with the highest mean share m(b) = (p1(b) + p2(b)) / 2, confidence
    m(b): never above the better image's own, and below it whenever the other image ranks that
    breed lower.
* **order**: the hint's order and confidence; none without a hint.
* **services, caption, is_grooming_before_after**: not given (``unavailable``): left to reviewers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from furrsight.pairs.verdict import LabelScore, Order, RejectCode, Verdict, rejection

if TYPE_CHECKING:
    from furrsight.search.breeds import BreedResult


class ImageFacts(msgspec.Struct, kw_only=True, frozen=True):
    top: list[LabelScore]  # breed shares P(breed | dog), best first
    dog_probability: float

    @classmethod
    def from_breed_result(cls, result: BreedResult) -> ImageFacts:
        return cls(top=[LabelScore(s.breed, s.confidence) for s in result.top], dog_probability=result.dog_probability)


class OfflineThresholds(msgspec.Struct, kw_only=True, frozen=True):
    min_dog_probability: float = 0.5
    same_dog_reject_below: float = 0.45


def combine_breeds(first: list[LabelScore], second: list[LabelScore]) -> tuple[str | None, float]:
    """The pair's breed and confidence from the two images' top-k (see the module's rules)."""
    p1 = {s.name: s.confidence for s in first}
    p2 = {s.name: s.confidence for s in second}
    if first and second and first[0].name == second[0].name:
        name = first[0].name
        return name, round(1 - (1 - p1[name]) * (1 - p2[name]), 4)
    candidates = list(dict.fromkeys([*p1, *p2]))
    if not candidates:
        return None, 0.0
    mean = {b: (p1.get(b, 0.0) + p2.get(b, 0.0)) / 2 for b in candidates}
    best = max(candidates, key=lambda b: mean[b])  # first listed wins a tie
    return best, round(mean[best], 4)


def _not_a_dog(before: ImageFacts, after: ImageFacts, floor: float) -> tuple[RejectCode, str] | None:
    low = [f"the {which} image (dog probability {f.dog_probability:.2f} < {floor:.2f})"
           for which, f in (("first", before), ("second", after)) if f.dog_probability < floor]  # fmt: skip
    return ("not_a_dog", "not a dog: " + " and ".join(low)) if low else None


def analyse_offline(
    before: ImageFacts,
    after: ImageFacts,
    same_dog_score: float,
    order_hint: tuple[Order, float] | None,
    thresholds: OfflineThresholds,
    *,
    model: str = "efficientnet-lite0",
) -> Verdict:
    """The verdict on one pair from the default model's facts (``before`` is the pair's first image)."""
    dog_reason = _not_a_dog(before, after, thresholds.min_dog_probability)
    is_dog = dog_reason is None
    same = same_dog_score >= thresholds.same_dog_reject_below
    score = min(1.0, max(0.0, same_dog_score))
    same_reason: tuple[RejectCode, str] | None = None
    if not same:
        same_reason = ("not_same_dog", f"not the same dog: same-dog score {same_dog_score:.2f} "
                                       f"< {thresholds.same_dog_reject_below:.2f}")  # fmt: skip
    breed, breed_confidence = combine_breeds(before.top, after.top) if is_dog else (None, 0.0)
    code, words = rejection(dog_reason, same_reason)
    unavailable = ["services", "caption", "is_grooming_before_after"]
    unavailable += [] if order_hint else ["before"]
    unavailable += [] if breed else ["breed"]
    facts = {"before": before, "after": after, "same_dog_score": same_dog_score, "order_hint": order_hint}
    return Verdict(
        same_dog=same,
        same_dog_confidence=round(score if same else 1 - score, 4),
        is_dog=is_dog,
        is_grooming_before_after=None,
        before=order_hint[0] if order_hint else None,
        order_confidence=order_hint[1] if order_hint else 0.0,
        breed=breed,
        breed_confidence=breed_confidence,
        source="model",
        model=model,
        raw=msgspec.json.encode(facts).decode(),
        unavailable=unavailable,
        reject_code=code,
        reject_reason=words,
    )
