"""Pair analysis: the tiny generated vision-language model (GGUF + mmproj) through the real
llama-cpp-python path with a schema-constrained answer, an answer that fails (retried once, then
``analysis_failed`` in words), the offline rules with exact numbers, and the prompt versions."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from furrsight.inference.gguf_runtime import GGUFChat
from furrsight.pairs.offline import ImageFacts, OfflineThresholds, analyse_offline, combine_breeds
from furrsight.pairs.prompting import (
    CONFIDENCE_STEPS,
    AnswerInvalid,
    PromptError,
    build_schema,
    default_prompt_version,
    load_prompt,
    parse_answer,
    prompt_versions,
    render_prompt,
)
from furrsight.pairs.verdict import AnalysisFailed, LabelScore
from furrsight.pairs.vlm import analyse_with_vlm, build_messages, image_url, projector_side
from tests.images import photo
from tests.tiny_models import make_tiny_gguf, make_tiny_mmproj

BREEDS = ["Poodle", "Shih Tzu", "Yorkshire Terrier"]
SERVICES = ["bath", "full haircut", "nail trim"]


class CountingChat(GGUFChat):
    """The real GGUF chat, counting its calls; ``cut_first`` makes the first answer run out of
    tokens (a real cut answer, finish_reason ``length``)."""

    def __init__(self, *args: Any, cut_first: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[int, float]] = []
        self.cut_first = cut_first

    def chat_json(self, messages: list[dict[str, Any]], schema: dict[str, Any], max_tokens: int = 512,
                  temperature: float = 0.0) -> Any:  # fmt: skip
        if self.cut_first and not self.calls:
            max_tokens = 4
        self.calls.append((max_tokens, temperature))
        return super().chat_json(messages, schema, max_tokens, temperature)


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    folder = tmp_path_factory.mktemp("tiny-vlm")
    yield make_tiny_gguf(folder / "tiny-vlm.gguf", n_ctx=4096), make_tiny_mmproj(folder / "mmproj-tiny.gguf")


@pytest.fixture
def chat(tiny_vlm: tuple[Path, Path]) -> Iterator[CountingChat]:
    model = CountingChat(tiny_vlm[0], tiny_vlm[1], n_ctx=4096, n_gpu_layers=0)
    yield model
    model.unload()


def test_the_tiny_vlm_answers_in_the_schema_and_the_answer_becomes_a_verdict(chat: CountingChat) -> None:
    verdict = analyse_with_vlm(chat, photo(1, (640, 480)), photo(2, (480, 640)), BREEDS, SERVICES, "analyse-v1")
    assert len(chat.calls) == 1 and chat.calls[0][1] == 0.0  # one greedy call, no retry needed
    answer = json.loads(verdict.raw)
    assert verdict.source == "vlm" and verdict.model == "tiny-vlm.gguf" and verdict.prompt_version == "analyse-v1"
    assert verdict.same_dog == answer["same_dog"] and verdict.is_dog == answer["is_dog"]
    assert verdict.is_grooming_before_after == answer["is_grooming_before_after"]
    assert verdict.before == answer["before"] and verdict.order_confidence == answer["order_confidence"]
    assert verdict.breed == (None if answer["breed"] == "unknown" else answer["breed"])
    assert [(s.name, s.confidence) for s in verdict.services] == [
        (s["name"], s["confidence"]) for s in answer["services"]
    ]
    assert answer["breed"] in [*BREEDS, "unknown"] and {s["name"] for s in answer["services"]} <= set(SERVICES)
    for key in ("same_dog_confidence", "before_after_confidence", "order_confidence", "breed_confidence"):
        assert answer[key] in CONFIDENCE_STEPS
    assert 1 <= len(answer["caption"]) <= 160
    said_no = [code for code, ok in (("not_a_dog", answer["is_dog"]), ("not_same_dog", answer["same_dog"]),
                                     ("not_before_after", answer["is_grooming_before_after"])) if not ok]  # fmt: skip
    assert verdict.reject_code == (said_no[0] if said_no else None)


def test_both_images_go_in_one_message_downscaled_to_the_projector_size(tiny_vlm: tuple[Path, Path]) -> None:
    assert projector_side(str(tiny_vlm[1])) == 32  # make_tiny_mmproj's image_size
    messages = build_messages(photo(3, (640, 480)), photo(4, (300, 600)), "prompt", 32)
    assert len(messages) == 1 and messages[0]["role"] == "user"
    parts = messages[0]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url", "text", "image_url", "text"]
    sizes = []
    for part in (parts[1], parts[3]):
        head, data = part["image_url"]["url"].split(",", 1)
        assert head == "data:image/jpeg;base64"
        sizes.append(Image.open(io.BytesIO(base64.b64decode(data))).size)
    assert sizes == [(32, 24), (16, 32)]
    with pytest.raises(AnalysisFailed, match="the second image cannot be decoded"):
        image_url(b"not an image", 32, "second")


def test_a_cut_answer_is_retried_once_and_the_retry_can_succeed(tiny_vlm: tuple[Path, Path]) -> None:
    chat = CountingChat(tiny_vlm[0], tiny_vlm[1], n_ctx=4096, n_gpu_layers=0, cut_first=True)
    try:
        verdict = analyse_with_vlm(chat, photo(5), photo(6), BREEDS, SERVICES)
    finally:
        chat.unload()
    assert chat.calls == [(4, 0.0), (768, 0.7)]  # cut short, then one sampled retry
    assert verdict.source == "vlm" and verdict.prompt_version == default_prompt_version()


def test_answers_cut_short_twice_fail_the_analysis_in_words(chat: CountingChat) -> None:
    with pytest.raises(AnalysisFailed) as failed:
        analyse_with_vlm(chat, photo(7), photo(8), BREEDS, SERVICES, max_tokens=6)
    assert len(chat.calls) == 2
    assert failed.value.reason == (
        "no usable answer in two attempts: first the answer was cut short (length): raise max_tokens; "
        "then the answer was cut short (length): raise max_tokens"
    )


def test_an_answer_the_grammar_allows_but_validation_refuses_fails_after_one_retry(chat: CountingChat) -> None:
    schema = build_schema(BREEDS, SERVICES)
    schema["properties"]["breed_confidence"] = {"type": "number", "enum": [1.5]}  # llama.cpp must write 1.5
    with pytest.raises(AnalysisFailed) as failed:
        analyse_with_vlm(chat, photo(9), photo(10), BREEDS, SERVICES, schema=schema)
    assert len(chat.calls) == 2
    refused = "the answer does not fit the schema: Expected `float` <= 1.0 - at `$.breed_confidence`"
    assert failed.value.reason == f"no usable answer in two attempts: first {refused}; then {refused}"
    assert json.loads(failed.value.raw)["breed_confidence"] == 1.5  # the raw answer is kept for the record


def test_the_schema_enums_are_the_given_vocabularies() -> None:
    schema = build_schema(BREEDS, SERVICES)
    props = schema["properties"]
    assert props["breed"]["enum"] == [*BREEDS, "unknown"]
    assert props["services"]["items"]["properties"]["name"]["enum"] == SERVICES
    assert props["services"]["maxItems"] == 3
    assert props["before"]["enum"] == ["first", "second"]
    assert props["same_dog_confidence"]["enum"] == [round(i * 0.05, 2) for i in range(21)]
    assert set(schema["required"]) == set(props) and schema["additionalProperties"] is False


def test_validation_names_what_is_wrong() -> None:
    good = {"caption": "trimmed", "is_dog": True, "same_dog": True, "same_dog_confidence": 0.9,
            "is_grooming_before_after": True, "before_after_confidence": 0.8, "before": "first",
            "order_confidence": 0.7, "breed": "Poodle", "breed_confidence": 0.6,
            "services": [{"name": "bath", "confidence": 0.5}]}  # fmt: skip
    assert parse_answer(good, BREEDS, SERVICES).breed == "Poodle"
    cases = [
        ({"breed": "Pug"}, "Invalid enum value 'Pug' - at `$.breed`"),
        ({"order_confidence": -0.1}, "Expected `float` >= 0.0 - at `$.order_confidence`"),
        ({"caption": "x" * 161}, "Expected `str` of length <= 160 - at `$.caption`"),
        ({"services": [{"name": "bath", "confidence": 0.5}, {"name": "bath", "confidence": 0.4}]},
         "the answer names a service more than once: bath"),
        ({"services": [{"name": "teeth", "confidence": 0.5}]}, "Invalid enum value 'teeth' - at `$.services[0].name`"),
    ]  # fmt: skip
    for change, words in cases:
        with pytest.raises(AnswerInvalid) as refused:
            parse_answer(good | change, BREEDS, SERVICES)
        assert words in str(refused.value)


def test_prompt_versions_are_listed_loaded_and_rendered(tmp_path: Path) -> None:
    assert prompt_versions() == ["analyse-v1"] and default_prompt_version() == "analyse-v1"
    assert "$services" in load_prompt("analyse-v1")
    assert "chosen from: bath, full haircut, nail trim." in render_prompt("analyse-v1", SERVICES)
    for name, text in (
        ("analyse-v2.md", "two"),
        ("analyse-v10.md", "ten"),
        ("other-v3.md", "x"),
        ("analyse-vx.md", "y"),
    ):
        (tmp_path / name).write_text(text)
    assert prompt_versions(tmp_path) == ["analyse-v2", "analyse-v10"]
    assert default_prompt_version(tmp_path) == "analyse-v10" and load_prompt("analyse-v2", tmp_path) == "two"
    with pytest.raises(PromptError, match="unknown prompt version 'analyse-v9'; known: analyse-v1"):
        load_prompt("analyse-v9")


def facts(dog: float, *top: tuple[str, float]) -> ImageFacts:
    return ImageFacts(top=[LabelScore(n, c) for n, c in top], dog_probability=dog)


def test_offline_agreement_raises_the_breed_confidence() -> None:
    first = facts(0.9, ("Poodle", 0.6), ("Bichon Frise", 0.3))
    second = facts(0.8, ("Poodle", 0.5), ("Maltese", 0.2))
    verdict = analyse_offline(first, second, 0.8, ("first", 0.6), OfflineThresholds())
    assert (verdict.breed, verdict.breed_confidence) == ("Poodle", 0.8)  # 1 - 0.4 * 0.5
    assert (verdict.same_dog, verdict.same_dog_confidence, verdict.is_dog) == (True, 0.8, True)
    assert (verdict.before, verdict.order_confidence) == ("first", 0.6)
    assert verdict.unavailable == ["services", "caption", "is_grooming_before_after"]
    assert verdict.is_grooming_before_after is None and verdict.services == [] and verdict.caption is None
    assert (verdict.source, verdict.model, verdict.reject_code, verdict.reject_reason) == (
        "model", "efficientnet-lite0", None, None)  # fmt: skip
    assert json.loads(verdict.raw)["same_dog_score"] == 0.8


def test_offline_disagreement_lowers_the_breed_confidence() -> None:
    first = [LabelScore("Poodle", 0.6), LabelScore("Bichon Frise", 0.3)]
    second = [LabelScore("Bichon Frise", 0.5), LabelScore("Poodle", 0.4)]
    assert combine_breeds(first, second) == ("Poodle", 0.5)  # (0.6 + 0.4) / 2, under 0.6
    assert combine_breeds(first, [LabelScore("Maltese", 0.9)]) == ("Maltese", 0.45)
    assert combine_breeds([], []) == (None, 0.0)


def test_offline_rejects_a_pair_that_is_not_a_dog_or_not_the_same_dog_with_reasons() -> None:
    dog, cat = facts(0.9, ("Poodle", 0.6)), facts(0.3, ("Poodle", 0.9))
    verdict = analyse_offline(
        dog, cat, 0.3, None, OfflineThresholds(min_dog_probability=0.5, same_dog_reject_below=0.45)
    )
    assert (verdict.is_dog, verdict.same_dog, verdict.same_dog_confidence) == (False, False, 0.7)
    assert verdict.breed is None and verdict.before is None
    assert verdict.unavailable == ["services", "caption", "is_grooming_before_after", "before", "breed"]
    assert verdict.reject_code == "not_a_dog"
    assert verdict.reject_reason == (
        "not a dog: the second image (dog probability 0.30 < 0.50); not the same dog: same-dog score 0.30 < 0.45"
    )
    same_dog_only = analyse_offline(dog, dog, 0.2, ("second", 0.3), OfflineThresholds(same_dog_reject_below=0.45))
    assert (same_dog_only.reject_code, same_dog_only.breed) == ("not_same_dog", "Poodle")


def test_a_vlm_no_rejects_only_when_the_model_is_sure_enough() -> None:
    from furrsight.pairs.prompting import to_verdict

    answer = {"caption": "same coat", "is_dog": True, "same_dog": False, "same_dog_confidence": 0.3,
              "is_grooming_before_after": False, "before_after_confidence": 0.85, "before": "second",
              "order_confidence": 0.4, "breed": "unknown", "breed_confidence": 0.2, "services": []}  # fmt: skip
    verdict = to_verdict(parse_answer(answer, BREEDS, SERVICES), model="m", prompt_version="analyse-v1", raw="{}")
    assert verdict.reject_code == "not_before_after"
    assert verdict.reject_reason == "the model says this is not a grooming before/after (model confidence 0.85)"
    assert (verdict.same_dog, verdict.breed, verdict.breed_confidence, verdict.unavailable) == (
        False,
        None,
        0.0,
        ["breed"],
    )


def test_the_catalogue_offers_small_permissive_vlms_and_flags_a_non_commercial_one() -> None:
    from furrsight.inference.manifest import catalogue

    known = catalogue()
    for name, size in (("qwen3-vl-2b-instruct", 1107409952), ("qwen3-vl-4b-instruct", 2497281664)):
        manifest = known[name]
        assert (manifest.task, manifest.runtime, manifest.license, manifest.commercial_use) == (
            "vlm", "gguf", "Apache-2.0", True)  # fmt: skip
        assert manifest.file("model").size == size and manifest.file("mmproj").sha256  # type: ignore[union-attr]
    assert known["qwen3-vl-2b-instruct"].unpinned() == []
    assert known["qwen2.5-vl-3b"].commercial_use is False and "non-commercial" in known["qwen2.5-vl-3b"].license


def test_the_shipped_taxonomy_makes_a_schema_and_its_names_validate() -> None:
    from furrsight.taxonomy.data import shipped_breeds, shipped_services

    breeds, services = [b["name"] for b in shipped_breeds()], [s["name"] for s in shipped_services()]
    schema = build_schema(breeds, services)
    assert schema["properties"]["breed"]["enum"] == [*breeds, "unknown"]
    assert schema["properties"]["services"]["items"]["properties"]["name"]["enum"] == services
    answer = {"caption": "shorter coat", "is_dog": True, "same_dog": True, "same_dog_confidence": 1.0,
              "is_grooming_before_after": True, "before_after_confidence": 0.95, "before": "first",
              "order_confidence": 0.9, "breed": "Löwchen", "breed_confidence": 0.55,
              "services": [{"name": services[0], "confidence": 0.8}]}  # fmt: skip
    assert parse_answer(answer, breeds, services).breed == "Löwchen"
