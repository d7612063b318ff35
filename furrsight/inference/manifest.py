"""Model manifests: ``models/*.toml`` in the repository (the catalogue), and the copy kept beside
installed files under ``<data>/models/<name>/``.

A manifest names a model's task, runtime, files (URL, size, revision and SHA-256), preprocessing,
licence and source. A downloadable file is *pinned* when it names the source revision (a commit
hash, never a moving branch such as ``main``; the URL must contain it) and the SHA-256 of its
bytes: ``pull`` refuses a file that is not pinned unless told ``allow_unpinned``, and refuses
bytes whose hash differs from the pinned one. ``bundled = true`` marks a model whose files ship in the
repository's ``models/<name>/`` folder (the built-in EfficientNet-Lite0): it is installed by default.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Literal

import msgspec

CATALOGUE = Path(__file__).resolve().parent.parent.parent / "models"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
REVISION_RE = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")  # a git commit (SHA-1 or SHA-256)

Task = Literal["image-embed", "text-embed", "classify", "vlm", "llm"]
Runtime = Literal["onnx", "gguf"]


class ModelError(Exception):
    """A model operation that cannot be done; the message says why in words."""


class ModelFile(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    path: str  # file name inside the model's folder
    url: str | None = None
    revision: str | None = None  # the commit of the source the URL points into (part of the URL)
    size: int | None = None
    sha256: str | None = None  # pinned: a download or import with another hash is refused
    role: Literal["model", "mmproj", "tokenizer", "licence", "other"] = "model"


class Preprocess(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    size: int = 224
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    crop: Literal["center", "resize"] = "center"


class Outputs(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    embedding: str | None = None  # output holding the vector (default: the first output)
    logits: str | None = None  # output holding ImageNet logits, when the model classifies


class TextSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    max_length: int = 77
    pad_id: int = 0


class Manifest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    task: Task
    runtime: Runtime
    description: str = ""
    license: str
    commercial_use: bool = True  # false: the licence forbids commercial use (say so before a pull)
    source: str
    files: list[ModelFile]
    dim: int | None = None  # embedding dimension
    preprocess: Preprocess | None = None
    outputs: Outputs = msgspec.field(default_factory=Outputs)
    labels: str | None = None  # "imagenet-1k" when logits are ImageNet classes
    text_model: str | None = None  # the text tower paired with this image tower (CLIP-type)
    text: TextSettings | None = None
    large: bool = False  # counts against the one-large-model-on-the-GPU rule
    bundled: bool = False

    def file(self, role: str) -> ModelFile | None:
        return next((f for f in self.files if f.role == role), None)

    def unpinned(self) -> list[ModelFile]:
        """Downloadable files that lack a revision or a SHA-256 (``pull`` refuses them by default)."""
        return [f for f in self.files if f.url and not (f.revision and f.sha256)]


def parse_manifest(text: str, origin: str = "manifest") -> Manifest:
    try:
        manifest = msgspec.convert(tomllib.loads(text), Manifest)
    except (tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        raise ModelError(f"{origin}: invalid manifest: {exc}") from exc
    if not NAME_RE.match(manifest.name):
        raise ModelError(f"{origin}: model name {manifest.name!r} must be lower-case letters, digits, . _ -")
    for f in manifest.files:
        if "/" in f.path or "\\" in f.path or f.path.startswith("."):
            raise ModelError(f"{origin}: file {f.path!r} must be a plain file name")
        if f.sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", f.sha256):
            raise ModelError(f"{origin}: file {f.path}: sha256 must be 64 lower-case hex digits")
        if f.revision is not None and not REVISION_RE.match(f.revision):
            raise ModelError(f"{origin}: file {f.path}: revision must be a full commit hash, not {f.revision!r}")
        if f.revision and f.url and f.revision not in f.url:
            raise ModelError(f"{origin}: file {f.path}: the URL must point into revision {f.revision}, not a branch")
    return manifest


def load_manifest(path: Path) -> Manifest:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelError(f"cannot read manifest {path}: {exc}") from exc
    return parse_manifest(text, str(path))


def catalogue(folder: Path = CATALOGUE) -> dict[str, Manifest]:
    """Every manifest of the repository's ``models/`` folder, by name."""
    found = {}
    for path in sorted(folder.glob("*.toml")):
        manifest = load_manifest(path)
        found[manifest.name] = manifest
    return found
