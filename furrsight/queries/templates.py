"""The query generator used when no LLM is installed: fixed phrasings over breed × service."""

from __future__ import annotations

from itertools import product

PHRASES = {
    "en": ["{breed} {service} before and after", "{breed} before and after {service}",
           "{service} transformation {breed}", "{breed} grooming {service} before after photos"],
    "de": ["{breed} {service} vorher nachher", "{breed} hundefriseur {service} vorher nachher"],
    "fr": ["{breed} {service} avant après", "toilettage {breed} {service} avant après"],
    "es": ["{breed} {service} antes y después", "peluquería canina {breed} {service} antes después"],
    "nl": ["{breed} {service} voor en na"],
    "it": ["{breed} {service} prima e dopo"],
}  # fmt: skip


def template_queries(breeds: list[str], services: list[str], languages: list[str], count: int) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for phrase_index in range(max(len(p) for p in PHRASES.values())):
        for language, breed, service in product(languages, breeds, services):
            phrases = PHRASES.get(language, PHRASES["en"])
            if phrase_index < len(phrases):
                text = phrases[phrase_index].format(breed=breed, service=service)
                out.append({"text": text, "breed": breed, "service": service, "language": language})
            if len(out) >= count:
                return out
    return out
