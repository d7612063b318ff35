"""The GGUF adapter (llama-cpp-python): a chat model, optionally with a vision projector (mmproj),
loaded lazily under a lock, answering schema-constrained JSON.

Only ``response_format={"type": "json_object", "schema": ...}`` constrains llama.cpp's output (the
OpenAI-style ``json_schema`` form is silently ignored); an answer cut by ``max_tokens`` is not
valid JSON, so ``finish_reason`` is checked before parsing.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from furrsight.inference import devices
from furrsight.inference.usage import Usage
from furrsight.metrics.instruments import INFERENCE_SECONDS


class GGUFOutputError(ValueError):
    """The model's answer was cut short or is not the JSON asked for."""


class GGUFChat(Usage):
    def __init__(
        self,
        model_path: Path,
        mmproj_path: Path | None = None,
        n_ctx: int = 4096,
        n_gpu_layers: int | None = None,
        seed: int = 0,
        n_threads: int = 0,
    ) -> None:
        super().__init__()
        self.model_path = model_path
        self.mmproj_path = mmproj_path
        self.n_ctx = n_ctx
        # None: every layer where the device probe says llama.cpp has a GPU, else none
        self.n_gpu_layers = devices.gguf_layers() if n_gpu_layers is None else n_gpu_layers
        self.seed = seed
        self.n_threads = n_threads  # 0: llama.cpp's default
        self._llm: Any = None
        self._lock = threading.Lock()

    def load(self) -> Any:
        with self._lock:
            if self._llm is None:
                from llama_cpp import Llama

                handler = None
                if self.mmproj_path is not None:
                    from llama_cpp.llama_chat_format import MTMDChatHandler

                    handler = MTMDChatHandler(clip_model_path=str(self.mmproj_path), verbose=False)
                options: dict[str, Any] = {"n_threads": self.n_threads} if self.n_threads else {}
                self._llm = Llama(
                    model_path=str(self.model_path),
                    n_ctx=self.n_ctx,
                    n_gpu_layers=self.n_gpu_layers,
                    chat_handler=handler,
                    seed=self.seed,
                    verbose=False,
                    **options,
                )
            return self._llm

    def unload(self) -> None:
        with self._lock:
            if self._llm is not None:
                self._llm.close()
            self._llm = None

    @property
    def loaded(self) -> bool:
        return self._llm is not None

    def chat_json(
        self, messages: list[dict[str, Any]], schema: dict[str, Any], max_tokens: int = 512, temperature: float = 0.0
    ) -> Any:
        """One chat completion constrained to ``schema``; the parsed JSON (blocking: use a thread)."""
        llm = self.load()
        with self._lock, self.in_use(), INFERENCE_SECONDS.labels(self.model_path.stem).time():
            answer = llm.create_chat_completion(
                messages=messages,
                response_format={"type": "json_object", "schema": schema},
                max_tokens=max_tokens,
                temperature=temperature,
            )
        choice = answer["choices"][0]
        text = choice["message"]["content"] or ""
        if choice.get("finish_reason") != "stop":
            raise GGUFOutputError(f"the answer was cut short ({choice.get('finish_reason')}): raise max_tokens")
        try:  # strict=False: raw control characters inside strings (small models emit them)
            return json.loads(text, strict=False)
        except json.JSONDecodeError as exc:
            raise GGUFOutputError(f"the answer is not valid JSON: {exc}: {text[:200]!r}") from exc
