"""The architecture page's layout table and the tree agree (no layout document drifting from the code)."""

from __future__ import annotations

import re
from pathlib import Path

from furrsight.settings import iter_settings_docs

ROOT = Path(__file__).resolve().parent.parent
LAYOUT = (ROOT / "docs" / "architecture.md").read_text()
DOCS = "\n".join(p.read_text() for p in sorted((ROOT / "docs").glob("*.md")))


def _layout_paths() -> list[str]:
    block = LAYOUT.split("<!-- layout:start -->")[1].split("<!-- layout:end -->")[0]
    return re.findall(r"^\| `([^`]+)` \|", block, flags=re.M)


def test_every_path_in_the_documented_layout_exists() -> None:
    missing = [p for p in _layout_paths() if not (ROOT / p).exists()]
    assert missing == []


def test_every_feature_package_and_top_level_module_is_in_the_documented_layout() -> None:
    listed = set(_layout_paths())
    package = ROOT / "furrsight"
    present = {f"furrsight/{p.name}/" for p in package.iterdir() if (p / "__init__.py").exists()}
    present |= {f"furrsight/{p.name}" for p in package.glob("*.py") if not p.name.startswith("__")}
    assert sorted(present - listed) == []


def test_every_setting_is_in_the_docs() -> None:
    missing = [env for _name, env, _doc in iter_settings_docs() if f"`{env}`" not in DOCS]
    assert missing == []
