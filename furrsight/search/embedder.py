"""Turning images and text into vectors with an installed model (blocking: run in a thread).

``ImageEmbedder`` decodes, crops and normalises a batch as the manifest says and runs the ONNX
image tower once per batch; it returns L2-normalised vectors and, when the model classifies,
softmax probabilities. ``TextEmbedder`` tokenises with the model's ``tokenizers`` file and runs
the text tower. Both are loaded through the residency manager.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from furrsight.inference.install import ModelStore
from furrsight.inference.manifest import Manifest, ModelError, Preprocess
from furrsight.inference.onnx_runtime import OnnxModel
from furrsight.inference.residency import RESIDENCY, Residency
from furrsight.inference.service import onnx_model
from furrsight.search.vectors import normalise


def preprocess(source: bytes | Path, pre: Preprocess) -> np.ndarray:
    """One image as a 3 x size x size float32 array."""
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
        if img.format == "JPEG":
            img.draft("RGB", (pre.size * 2, pre.size * 2))
        view = ImageOps.exif_transpose(img).convert("RGB")
    if pre.crop == "center":
        w, h = view.size
        side = min(w, h)
        view = view.crop(((w - side) // 2, (h - side) // 2, (w + side) // 2, (h + side) // 2))
    view = view.resize((pre.size, pre.size), Image.Resampling.BICUBIC)
    x: np.ndarray = np.asarray(view, dtype=np.float32) / 255.0
    x = (x - np.asarray(pre.mean, np.float32)) / np.asarray(pre.std, np.float32)
    return x.transpose(2, 0, 1).astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class ImageEmbedder:
    def __init__(self, manifest: Manifest, model: OnnxModel) -> None:
        if manifest.task not in ("image-embed", "classify") or manifest.runtime != "onnx":
            raise ModelError(f"{manifest.name} is a {manifest.runtime} {manifest.task} model, not an ONNX image model")
        self.manifest = manifest
        self.model = model
        self.pre = manifest.preprocess or Preprocess()

    @property
    def classifies(self) -> bool:
        return self.manifest.outputs.logits is not None and self.manifest.labels == "imagenet-1k"

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Vectors (normalised) and class probabilities (or None) of a preprocessed batch."""
        wanted = [n for n in (self.manifest.outputs.embedding, self.manifest.outputs.logits) if n]
        out = self.model.run(batch.astype(np.float32), wanted or None)
        first = self.manifest.outputs.embedding or next(iter(out))
        probs = softmax(out[self.manifest.outputs.logits]) if self.classifies else None  # type: ignore[index]
        return normalise(out[first]), probs

    def embed(self, sources: list[bytes | Path]) -> tuple[np.ndarray, np.ndarray | None]:
        return self.run(np.stack([preprocess(s, self.pre) for s in sources]))


class TextEmbedder:
    def __init__(self, manifest: Manifest, model: OnnxModel, tokenizer_path: Path) -> None:
        from tokenizers import Tokenizer

        self.manifest = manifest
        self.model = model
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))

    def embed(self, texts: list[str]) -> np.ndarray:
        length = self.manifest.text.max_length if self.manifest.text else 77
        pad = self.manifest.text.pad_id if self.manifest.text else 0
        ids = np.full((len(texts), length), pad, dtype=np.int64)
        for row, encoding in enumerate(self.tokenizer.encode_batch(texts)):
            tokens = encoding.ids[:length]
            ids[row, : len(tokens)] = tokens
        if "int32" in self.model.input_type:
            ids = ids.astype(np.int32)
        out = self.model.run(ids)
        return normalise(out[self.manifest.outputs.embedding or next(iter(out))])


def _onnx(models: ModelStore, manifest: Manifest, residency: Residency) -> OnnxModel:
    return onnx_model(models, manifest, residency)


def image_embedder(
    models: ModelStore, name: str, residency: Residency = RESIDENCY, idle_unload_s: float | None = None
) -> ImageEmbedder:
    if idle_unload_s is not None:
        residency.unload_idle(idle_unload_s)
    manifest = models.require(name)
    return ImageEmbedder(manifest, _onnx(models, manifest, residency))


def text_embedder(models: ModelStore, name: str, residency: Residency = RESIDENCY) -> TextEmbedder:
    """The text tower paired with image model ``name``; ModelError naming what to pull."""
    image = models.manifest(name)
    if not image.text_model:
        raise ModelError(
            f"the active model {name} has no text tower, so it cannot search by text: pull a CLIP-type model "
            "(`furrsight models pull clip-vit-b32` and `clip-vit-b32-text`) and make it the active model "
            "(setting search.model)"
        )
    manifest = models.require(image.text_model)
    entry = manifest.file("tokenizer")
    if entry is None:
        raise ModelError(f"{manifest.name}: the manifest names no tokenizer file")
    return TextEmbedder(manifest, _onnx(models, manifest, residency), models.file_path(manifest, entry))
