"""Breed identification from ImageNet probabilities.

``imagenet_dog_breeds.tsv`` maps the 118 ImageNet-1k dog classes (indices 151-268) to the
appliance's breed names (a data file the pairs feature can reuse). The probability that a photo
shows a dog at all is the sum of those classes' probabilities; below the ``not_a_dog_below``
setting the photo is flagged and given no breed. A breed's confidence is its probability among
dog classes (P(breed | dog)).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import msgspec
import numpy as np

BREEDS_FILE = Path(__file__).with_name("imagenet_dog_breeds.tsv")


class BreedScore(msgspec.Struct, kw_only=True):
    breed: str
    confidence: float


class BreedResult(msgspec.Struct, kw_only=True):
    breed: str | None  # None when the photo is not a dog
    confidence: float
    top: list[BreedScore]
    dog_probability: float
    is_dog: bool
    model: str = ""


@lru_cache(maxsize=1)
def breed_table() -> tuple[np.ndarray, list[str]]:
    """(ImageNet class indices, breed names), in class order."""
    rows = [line.split("\t") for line in BREEDS_FILE.read_text().splitlines() if not line.startswith("#")]
    return np.array([int(r[0]) for r in rows]), [r[2] for r in rows]


def breed_names() -> list[str]:
    return breed_table()[1]


def identify(probs: np.ndarray, not_a_dog_below: float, top_k: int = 5) -> BreedResult:
    """The breed answer for one image's 1000 ImageNet probabilities."""
    indices, names = breed_table()
    dog = probs[indices]
    dog_probability = float(dog.sum())
    share = dog / max(dog_probability, 1e-12)
    order = np.argsort(-share)[:top_k]
    top = [BreedScore(breed=names[i], confidence=round(float(share[i]), 4)) for i in order]
    is_dog = dog_probability >= not_a_dog_below
    return BreedResult(
        breed=top[0].breed if is_dog else None,
        confidence=top[0].confidence if is_dog else 0.0,
        top=top,
        dog_probability=round(dog_probability, 4),
        is_dog=is_dog,
    )
