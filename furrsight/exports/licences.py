"""Licence strings as sources give them ("CC BY-SA 2.0", "cc-by-4.0", a creativecommons.org URL,
"Public domain") turned into one id each, with a name, a URL, the family that the allow-list
names, and the identifier the Hugging Face hub knows (``other`` where it has none)."""

from __future__ import annotations

import re

import msgspec

UNKNOWN = "unknown"
# Licence ids the Hugging Face hub's dataset cards accept (the Creative Commons ones we can meet).
HUB_IDS = {
    "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0", "cc-by-sa-4.0",
    "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0", "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0",
    "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0",
}  # fmt: skip
_CC = re.compile(r"\bcc[\s_-]*((?:by|nc|nd|sa)(?:[\s_-]+(?:by|nc|nd|sa))*)[\s_-]*(\d(?:\.\d)?)?", re.I)
_CC_URL = re.compile(r"creativecommons\.org/licenses/([a-z-]+)/(\d(?:\.\d)?)", re.I)
_CC0 = re.compile(r"\bcc[\s_-]*(?:0|zero)\b|publicdomain/zero", re.I)
_PD = re.compile(r"public[\s_-]*domain|\bpdm\b|publicdomain/mark", re.I)


class Licence(msgspec.Struct, frozen=True):
    id: str  # cc-by-sa-2.0, cc0-1.0, public-domain, unknown
    family: str  # cc-by-sa, cc0, public-domain, unknown: what ``exports.licenses`` lists
    name: str  # CC BY-SA 2.0
    url: str | None
    hub: str  # the hub's id, or "other"


def parse(text: str | None) -> Licence:
    """The licence a source's free text names; ``unknown`` when it names none we know."""
    raw = (text or "").strip()
    if not raw:
        return Licence(UNKNOWN, UNKNOWN, "unknown licence", None, UNKNOWN)
    if _CC0.search(raw):
        return Licence("cc0-1.0", "cc0", "CC0 1.0", "https://creativecommons.org/publicdomain/zero/1.0/", "cc0-1.0")
    if _PD.search(raw):
        return Licence("public-domain", "public-domain", "Public Domain", None, "other")
    found = _CC_URL.search(raw)
    parts, version = (found.group(1).split("-"), found.group(2)) if found else (None, None)
    if parts is None and (match := _CC.search(raw)):
        parts, version = re.split(r"[\s_-]+", match.group(1).lower()), match.group(2)
    if not parts or parts[0].lower() != "by":
        return Licence(UNKNOWN, UNKNOWN, f"unknown licence ({raw[:80]})", None, UNKNOWN)
    terms = [p.lower() for p in parts]
    family = "cc-" + "-".join(terms)
    lid = f"{family}-{version}" if version else family  # no version stated: the family alone
    name = f"CC {'-'.join(t.upper() for t in terms)} {version or '(version not stated)'}"
    url = f"https://creativecommons.org/licenses/{'-'.join(terms)}/" + (f"{version}/" if version else "")
    return Licence(lid, family, name, url, lid if lid in HUB_IDS else "other")


def allowed(licence: Licence, families: list[str], allow_unknown: bool) -> bool:
    """Whether an image under ``licence`` may go into a version that allows ``families`` (or
    exact ids); unknown licences only with ``allow_unknown``."""
    if licence.id == UNKNOWN:
        return allow_unknown
    return licence.family in families or licence.id in families
