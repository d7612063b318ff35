"""What a supervisor (``furrsight up`` or ``furrsight worker``) is doing with its children, for
``/health``: a small JSON file per supervisor in ``<data>/run/``.

The supervisor rewrites its file (temp file + rename, so a reader never sees half of it) whenever
a child stops, is waiting to restart or runs again, and removes it when it stops. The web process
reads the files of supervisors that are still alive: a file left by a supervisor that was killed
is ignored. A file rather than a Valkey key, because the broker itself may be the child that is
restarting.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def run_dir(data_path: Path) -> Path:
    return data_path / "run"


def write_status(path: Path, children: dict[str, dict[str, Any]], **facts: str) -> None:
    """``facts``: what other commands may need, such as the private broker's ``broker_url``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(json.dumps({"pid": os.getpid(), **facts, "children": children}, indent=1))
    temp.replace(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _live(data_path: Path) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    folder = run_dir(data_path)
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            status = json.loads(path.read_text())
        except (OSError, ValueError):  # removed or replaced while we read it
            continue
        if isinstance(status.get("pid"), int) and _alive(status["pid"]):
            found[path.stem] = status
    return found


def read_statuses(data_path: Path) -> dict[str, dict[str, Any]]:
    """Each live supervisor's children by name (``up.json`` → ``up``)."""
    return {role: status.get("children", {}) for role, status in _live(data_path).items()}


def live_broker_url(data_path: Path) -> str | None:
    """The private broker of a running ``furrsight up`` on this data directory, if any."""
    urls = [s["broker_url"] for s in _live(data_path).values() if isinstance(s.get("broker_url"), str)]
    return urls[0] if urls else None


def processes_report(data_path: Path) -> dict[str, Any]:
    """The ``processes`` part of ``/health``: not ok while a supervised child is down."""
    supervisors = read_statuses(data_path)
    children = {name: child for kids in supervisors.values() for name, child in kids.items()}
    down = sorted(name for name, child in children.items() if child.get("state") != "running")
    report: dict[str, Any] = {"ok": not down, "supervised_by": sorted(supervisors), "restarting": down}
    if down:
        report["error"] = "; ".join(f"{name} {children[name].get('detail', 'is down')}" for name in down)
    report["children"] = children
    return report


async def processes_check(state: Any) -> dict[str, Any]:
    """``/health``'s check over the app's state (see ``furrsight.web.health``)."""
    return processes_report(state.settings.data_path)
