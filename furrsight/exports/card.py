"""The dataset card (``README.md``): YAML that declares configs, splits, features and licences —
so ``datasets.load_dataset(folder)`` decodes both images and types the breed with no argument —
then prose on how the data was collected, labelled and checked. The YAML is written as JSON
values (JSON is YAML), one key per line: no YAML library, and the same bytes every time."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

from furrsight.exports import licences
from furrsight.exports.splits import SPLITS

DEFAULT_LIMITS = (
    "Pairs come from what the lab's scrapers found and reviewers accepted: breeds and services are "
    "as common as they are online, not balanced. Model labels that no reviewer changed can be wrong at "
    "the rate measured above. Near-duplicates were grouped by perceptual hash and embedding before "
    "splitting; duplicates that neither measure sees (heavy crops, mirrored re-posts) can remain."
)


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "n>1M"


def _yaml(values: dict[str, Any]) -> str:
    return "\n".join(f"{k}: {json.dumps(v, ensure_ascii=False, sort_keys=False)}" for k, v in values.items())


def _licence_fields(items: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    used = sorted({item[side]["license"] for item in items for side in ("before", "after")})
    parsed = {lid: licences.parse(lid) if lid != licences.UNKNOWN else licences.parse(None) for lid in used}
    hub = sorted({p.hub for p in parsed.values()})
    fields: dict[str, Any] = {"license": hub if len(hub) != 1 else hub[0]}
    others = [p for p in parsed.values() if p.hub == "other"]
    if others:
        fields["license_name"] = ", ".join(p.name for p in others)
        fields["license_link"] = "ATTRIBUTION"
    return fields, [parsed[lid].name for lid in used]


def yaml_header(fmt: str, version: dict[str, Any], items: list[dict[str, Any]], features: list[Any]) -> str:
    counts = Counter(item["split"] for item in items)
    lic, _ = _licence_fields(items)
    values: dict[str, Any] = {
        "pretty_name": f"FurrSight Grooming Dataset {version['name']}",
        **lic,
        "annotations_creators": ["machine-generated", "expert-generated"],
        "size_categories": [_size_category(len(items))],
        "task_categories": ["image-to-image"],
        "tags": ["dog-grooming", "before-after", "image-pairs"],
    }
    if fmt == "hf-parquet":
        values["configs"] = [
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": f"data/{s}-*"} for s in SPLITS],
            }
        ]
        values["dataset_info"] = {
            "features": features,
            "splits": [{"name": s, "num_examples": counts.get(s, 0)} for s in SPLITS],
        }
    elif fmt == "imagefolder":  # load_dataset(folder) works too: the builder is picked from the files
        values["configs"] = [
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": f"{s}/**"} for s in SPLITS if counts.get(s)],
            }
        ]
    return "---\n" + _yaml(values) + "\n---\n"


def card_features(class_names: list[str], string_fields: list[str], float_fields: list[str]) -> list[Any]:
    """The card's ``dataset_info.features`` (the README form of the same features)."""
    return [
        {"name": "pair_id", "dtype": "int64"},
        {"name": "before", "dtype": "image"},
        {"name": "after", "dtype": "image"},
        {"name": "breed", "dtype": {"class_label": {"names": {str(i): n for i, n in enumerate(class_names)}}}},
        {"name": "services", "list": "string"},
        *({"name": f, "dtype": "string"} for f in string_fields),
        *({"name": f, "dtype": "float64"} for f in float_fields),
    ]


def _host(url: str | None) -> str:
    return urlsplit(url).hostname or "local" if url else "local"


def _precision(items: list[dict[str, Any]], corrections: dict[int, set[str]]) -> str:
    """Model breed labels that reviewers kept, among those a model gave (kept or corrected)."""
    kept = sum(1 for i in items if i["labels"]["breed_source"] in ("model", "vlm"))
    fixed = sum(1 for i in items if "breed" in corrections.get(i["pair_id"], set()))
    if kept + fixed == 0:
        return "not measured: no pair of this version carried a model's breed label through review"
    return f"{kept / (kept + fixed):.1%} ({kept} of {kept + fixed} model breed labels kept by reviewers)"


def prose(
    version: dict[str, Any], items: list[dict[str, Any]], corrections: dict[int, set[str]], limits: str, fmt: str
) -> str:
    counts = Counter(item["split"] for item in items)
    _, licence_names = _licence_fields(items)
    models = sorted(
        {
            f"{i['labels']['model']} (prompt {i['labels']['prompt_version'] or '-'})"
            for i in items
            if i["labels"]["model"]
        }
    )
    origins = Counter(i["labels"]["origin"] for i in items)
    sources = Counter(
        _host(i[side]["source_url"] or i[side]["page_url"]) for i in items for side in ("before", "after")
    )
    leaks = version["report"].get("leaks", {})
    selection = version["selection"]
    unknown = selection.get("allow_unknown_license")
    lines = [
        f"# FurrSight Grooming Dataset — {version['name']}",
        "",
        version.get("notes") or "Before and after photographs of dog grooming, in pairs, with breed and services.",
        "",
        f"Format: `{fmt}`. Version content hash: `{version['content_hash']}`.",
        "",
        "## Contents",
        "",
        f"{len(items)} pairs: " + ", ".join(f"{counts.get(s, 0)} {s}" for s in SPLITS) + ".",
        "Origins: " + ", ".join(f"{n} {o}" for o, n in sorted(origins.items())) + ".",
        "",
        "## How it was collected",
        "",
        "Images were found by FurrSight's scrapers (search APIs of openly licensed images, pages a "
        "curator named) or uploaded by the lab; each keeps its source URL, page, author and licence. "
        "Sources by host: " + ", ".join(f"{h} ({n})" for h, n in sorted(sources.items())) + ".",
        "",
        "## How it was labelled",
        "",
        "Candidate pairs were mined from collages, posts and similar images, analysed by a "
        "vision-language model (same dog, order, breed, services) and accepted by a reviewer. "
        "Models and prompt versions: " + (", ".join(models) if models else "none (labels by people)") + ".",
        f"Measured precision of model breed labels in review: {_precision(items, corrections)}.",
        "",
        "## How it was checked",
        "",
        "Pairs that share an image, near-duplicate images (perceptual hash or embedding) or a post "
        "are one component, and a component lies in one split. The leak check, measured on the "
        f"version's images: {json.dumps(leaks, sort_keys=True)}.",
        "",
        "## Licences",
        "",
        "Images are under: " + ", ".join(licence_names) + ". See `ATTRIBUTION` for each image's credit.",
        "Allowed licence families for this version: " + ", ".join(selection.get("licenses", [])) + ".",
    ]
    if unknown:
        lines.append("**This version lets in images whose licence is unknown**: check them before any reuse.")
    if any(licences.parse(n).family.find("nc") >= 0 for n in licence_names):
        lines.append("**Some images are under a non-commercial licence**: no commercial use of those.")
    lines += ["", "## Known limits", "", limits or DEFAULT_LIMITS, ""]
    return "\n".join(lines)
