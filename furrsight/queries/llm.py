"""The one LLM call query generation needs, behind a tiny protocol: ``chat_json``.

Implemented with llama-cpp-python directly; only ``response_format={"type": "json_object",
"schema": ...}`` constrains the output, an answer cut by ``max_tokens`` (finish_reason
``length``) is refused, and the result is validated again before use.
"""

from __future__ import annotations

import json
import threading
import tomllib
from pathlib import Path
from typing import Any, Protocol

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
    """A GGUF chat model loaded lazily, once, under a lock."""

    def __init__(self, path: Path, n_ctx: int = 2048, max_tokens: int = 512, threads: int = 0, seed: int = 0) -> None:
        self.path = path
        self.n_ctx = n_ctx
        self.max_tokens = max_tokens
        self.threads = threads
        self.seed = seed
        self._llm: Any = None
        self._lock = threading.Lock()

    def load(self) -> Any:
        with self._lock:
            if self._llm is None:
                from llama_cpp import Llama

                kwargs: dict[str, Any] = {"model_path": str(self.path), "n_ctx": self.n_ctx, "verbose": False,
                                          "seed": self.seed, "n_gpu_layers": -1}  # fmt: skip
                if self.threads:
                    kwargs["n_threads"] = self.threads
                self._llm = Llama(**kwargs)
            return self._llm

    def chat_json(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> dict[str, Any]:
        answer = self.load().create_chat_completion(
            messages=messages, response_format={"type": "json_object", "schema": schema},
            max_tokens=self.max_tokens, temperature=0.9,
        )  # fmt: skip
        choice = answer["choices"][0]
        if choice.get("finish_reason") != "stop":
            raise LLMError(f"the model stopped early ({choice.get('finish_reason')}): its JSON is incomplete")
        try:  # strict=False: raw control characters inside strings are tolerated, then cleaned
            value = json.loads(choice["message"]["content"] or "", strict=False)
        except ValueError as exc:
            raise LLMError(f"the model's answer is not JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise LLMError("the model's answer is not a JSON object")
        return value
