"""Analysing a pair with a vision-language model (GGUF + mmproj through llama-cpp-python).

Both images go in **one** user message, as data: URIs, downscaled first to the projector's input
size (the ``clip.vision.image_size`` of the mmproj; a bigger image costs encode time and, for
dynamic-resolution models such as Qwen-VL, image tokens, for nothing). The answer is constrained by
the schema built from the taxonomy (``prompting.build_schema``) and checked again after decoding.
An answer that is cut short, not JSON, or does not fit the vocabularies gets one retry, sampled at
``retry_temperature`` (the first try is greedy: asking again greedily would repeat the same
answer); a second failure raises ``AnalysisFailed`` with both reasons in words.

``raw`` is the decoded answer written back as JSON (the runtime hands back parsed JSON; apart from
whitespace this is what the model wrote). Blocking: call it from a worker thread.
"""

from __future__ import annotations

import base64
import io
import json
from functools import lru_cache
from typing import Any

from PIL import Image, ImageOps

from furrsight.images.decode import draft, shrink
from furrsight.inference.gguf_runtime import GGUFChat
from furrsight.pairs.prompting import (
    AnswerInvalid,
    build_schema,
    default_prompt_version,
    parse_answer,
    render_prompt,
    to_verdict,
)
from furrsight.pairs.verdict import AnalysisFailed, Verdict

DEFAULT_SIDE = 448  # when the projector does not say (and the most a projector's size is taken up to)
MAX_SIDE = 1024


@lru_cache(maxsize=8)
def projector_side(mmproj_path: str | None) -> int:
    """The image side the vision projector works at, read from its GGUF header."""
    if mmproj_path is None:
        return DEFAULT_SIDE
    from gguf import GGUFReader  # reads the header and tensor index only (memory-mapped)

    field = GGUFReader(mmproj_path).get_field("clip.vision.image_size")
    if field is None:
        return DEFAULT_SIDE
    return max(1, min(MAX_SIDE, int(field.contents())))


def image_url(data: bytes, side: int, which: str) -> str:
    """One image, upright, RGB, longest side at most ``side``, as a JPEG data: URI."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            draft(img, side)  # JPEG decodes at 1/2..1/8 scale when that is still big enough
            img.load()
            view = (ImageOps.exif_transpose(img) or img).convert("RGB")
    except Exception as exc:  # any decoder failure is this image's problem, said in words
        raise AnalysisFailed(f"the {which} image cannot be decoded: {exc}") from exc
    out = io.BytesIO()
    Image.fromarray(shrink(view, side)).save(out, "JPEG", quality=90)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def build_messages(before: bytes, after: bytes, prompt: str, side: int) -> list[dict[str, Any]]:
    content = [
        {"type": "text", "text": "First image:"},
        {"type": "image_url", "image_url": {"url": image_url(before, side, "first")}},
        {"type": "text", "text": "Second image:"},
        {"type": "image_url", "image_url": {"url": image_url(after, side, "second")}},
        {"type": "text", "text": prompt},
    ]
    return [{"role": "user", "content": content}]


def analyse_with_vlm(
    chat: GGUFChat,
    before: bytes,
    after: bytes,
    breeds: list[str],
    services: list[str],
    prompt_version: str | None = None,
    *,
    max_tokens: int = 768,
    retry_temperature: float = 0.7,
    min_reject_confidence: float = 0.5,
    schema: dict[str, Any] | None = None,
    side: int | None = None,
    model: str | None = None,
) -> Verdict:
    """The verdict on one pair: ``before`` is shown as the first image, ``after`` as the second.
    ``schema`` overrides the one built from the vocabularies (the answer is still checked against
    them); ``side`` the image size."""
    version = prompt_version or default_prompt_version()
    prompt = render_prompt(version, services)
    messages = build_messages(before, after, prompt, side or projector_side(_path(chat.mmproj_path)))
    schema = schema or build_schema(breeds, services)
    problems: list[str] = []
    raw = ""
    for temperature in (0.0, retry_temperature):
        try:
            value = chat.chat_json(messages, schema, max_tokens=max_tokens, temperature=temperature)
        except ValueError as exc:  # GGUFOutputError (cut short, not JSON) and llama.cpp's own refusals
            problems.append(str(exc))
            continue
        raw = json.dumps(value, ensure_ascii=False)
        try:
            answer = parse_answer(value, breeds, services)
        except AnswerInvalid as exc:
            problems.append(str(exc))
            continue
        name = model or chat.model_path.name
        return to_verdict(
            answer, model=name, prompt_version=version, raw=raw, min_reject_confidence=min_reject_confidence
        )
    raise AnalysisFailed(f"no usable answer in two attempts: first {problems[0]}; then {problems[1]}", raw=raw)


def _path(path: Any) -> str | None:
    return None if path is None else str(path)
