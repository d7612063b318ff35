"""Where the processes keep their metric values: ``<data>/run/metrics/<role>/``.

prometheus_client's multiprocess mode keeps each process's values in memory-mapped files in the
folder named by ``PROMETHEUS_MULTIPROC_DIR``, which must be set before prometheus_client is
imported (it picks its value class at import). The command that starts a group of processes
(``furrsight up``, ``serve`` or ``worker``) empties its own folder and sets the variable for
itself and its children; a child started by ``up`` inherits it and cleans nothing. Each role has
its own folder so that a restarted ``furrsight worker`` does not erase the web process's values
(systemd runs them apart); ``/metrics`` sums the files of every role.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


def metrics_root(data_path: Path) -> Path:
    return data_path / "run" / "metrics"


def prepare(data_path: Path, role: str) -> Path | None:
    """Give this command (and the processes it starts) a clean metrics folder of ``role``.

    Inherited (a child of ``furrsight up``): nothing is cleaned. ``up`` owns the whole tree;
    ``serve``/``worker`` clean their own folder and the one a former ``up`` left behind.
    """
    if os.environ.get(ENV):
        return None
    root = metrics_root(data_path)
    stale = [root] if role == "up" else [root / role, root / "up"]
    for folder in stale:
        shutil.rmtree(folder, ignore_errors=True)
    folder = root / role
    folder.mkdir(parents=True, exist_ok=True)
    if "prometheus_client" in sys.modules:  # too late for this process: say so rather than lose counts
        raise RuntimeError("prometheus_client was imported before its multiprocess folder was set")
    os.environ[ENV] = str(folder)
    return folder
