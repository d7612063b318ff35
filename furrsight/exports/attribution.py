"""Attribution in words a person can paste into a paper: one sentence per image, and the
``ATTRIBUTION`` file of an export."""

from __future__ import annotations

from typing import Any

from furrsight.exports.licences import Licence


def sentence(title: str | None, author: str | None, source: str | None, licence: Licence) -> str:
    """'"Max after his bath" by Ann Smith (https://…), CC BY-SA 2.0 (https://creativecommons…)'."""
    what = f'"{title.strip()}"' if title and title.strip() else "Untitled image"
    who = f" by {author.strip()}" if author and author.strip() else " by an unknown author"
    where = f" ({source})" if source else ""
    terms = f", {licence.name}" + (f" ({licence.url})" if licence.url else "")
    return f"{what}{who}{where}{terms}"


def attribution_file(version: dict[str, Any], items: list[dict[str, Any]]) -> str:
    """Every image of the export, once, in pair order, with its title, author, source and licence."""
    lines = [
        f"Attribution for dataset version {version['name']} (content hash {version['content_hash']}).",
        "Each image below is used under the licence named beside it; reuse must keep these credits.",
        "",
    ]
    seen: set[int] = set()
    for item in items:
        for side in ("before", "after"):
            image = item[side]
            if image["id"] in seen:
                continue
            seen.add(image["id"])
            lines.append(f"pair {item['pair_id']} {side}: {image['attribution']}")
    return "\n".join(lines) + "\n"
