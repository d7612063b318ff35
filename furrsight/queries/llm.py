"""The one LLM call query generation needs, behind a tiny protocol: ``chat_json``.

Implemented with the inference runtime's GGUF adapter; only ``response_format={"type": "json_object",
"schema": ...}`` constrains the output, an answer cut by ``max_tokens`` (finish_reason
``length``) is refused, and the result is validated again before use.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Protocol

from furrsight.inference.gguf_runtime import GGUFChat, GGUFOutputError
from furrsight.inference.residency import RESIDENCY, Residency
from furrsight.settings import Settings


class LLMError(RuntimeError):
    """The model gave no usable answer."""


class ChatJSON(Protocol):
    def chat_json(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> dict[str, Any]: ...


def find_llm(settings: Settings) -> Path | None:
    """The GGUF to use: the setting, else an installed model whose manifest task is ``llm``."""
    if settings.queries.llm_model_path:
        path = Path(settings.queries.llm_model_path).expanduser()
        return path if path.is_file() else None
    models = settings.data_path / "models"
    if not models.is_dir():
        return None
    for folder in sorted(p for p in models.iterdir() if p.is_dir()):
        task = ""
        for name in ("manifest.toml", "model.toml"):
            if (folder / name).is_file():
                try:
                    task = str(tomllib.loads((folder / name).read_text()).get("task", ""))
                except (OSError, tomllib.TOMLDecodeError):
                    task = ""
        ggufs = sorted(p for p in folder.rglob("*.gguf") if "mmproj" not in p.name)
        if task == "llm" and ggufs:
            return ggufs[0]
    return None


class LlamaCppChat:
    """Query generation's view of a GGUF chat model: the inference runtime's ``GGUFChat``
    (lazy locked load, schema-constrained JSON, finish_reason checked), answering a JSON object.

    The model is a large one held by the process's residency manager (the GPU worker's): it is
    loaded on first use after unloading any other large model (a VLM), offloaded to the GPU as the
    residency allows, and unloaded by the idle sweeper once unused for ``search.idle_unload_s``."""

    def __init__(
        self,
        path: Path,
        n_ctx: int = 2048,
        max_tokens: int = 512,
        threads: int = 0,
        seed: int = 0,
        residency: Residency = RESIDENCY,
    ) -> None:
        self.path, self.n_ctx, self.threads, self.seed = path, n_ctx, threads, seed
        self.max_tokens = max_tokens
        self.residency = residency

    @property
    def key(self) -> str:
        return f"llm:{self.path}"

    def model(self) -> GGUFChat:
        """The resident chat model (loaded through the residency manager, making room first)."""
        r = self.residency
        load = lambda: GGUFChat(self.path, n_ctx=self.n_ctx, n_gpu_layers=r.gpu_layers, seed=self.seed,  # noqa: E731
                                n_threads=self.threads)  # fmt: skip
        return r.acquire(self.key, load, large=True)  # type: ignore[no-any-return]

    def chat_json(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> dict[str, Any]:
        try:
            value = self.model().chat_json(messages, schema, self.max_tokens, temperature=0.9)  # type: ignore[arg-type]
        except GGUFOutputError as exc:
            raise LLMError(str(exc)) from exc
        if not isinstance(value, dict):
            raise LLMError("the model's answer is not a JSON object")
        return value
