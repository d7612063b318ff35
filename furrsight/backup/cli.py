"""``furrsight backup DEST`` and ``furrsight restore SRC``, with progress bars.

Both run here, in this process, not as jobs: a backup needs no worker (and works while the
appliance runs), and a restore must run before it starts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from furrsight.backup.files import BackupError
from furrsight.backup.restore import restore_from
from furrsight.backup.snapshot import backup_to
from furrsight.settings import Settings

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
COLUMNS = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())


def _with_bar(what: str, run: Callable[[Callable[[int, int], None]], Any]) -> Any:
    with Progress(*COLUMNS, console=console) as bar:
        shown = bar.add_task(what, total=None)
        return run(lambda done, total: bar.update(shown, completed=done, total=total))


def backup(settings: Settings, dest: Path, models: bool) -> bool:
    try:
        final = _with_bar("backing up", lambda p: backup_to(settings, dest, p, models=models))
    except (BackupError, OSError) as exc:  # OSError: a full disk, a folder we may not write
        err.print(f"[red]{exc}[/red]")
        return False
    console.print(f"backup written: {final}", highlight=False)
    return True


def restore(src: Path, data_dir: Path) -> bool:
    try:
        manifest = _with_bar("verifying and restoring", lambda p: restore_from(src, data_dir, p))
    except (BackupError, OSError) as exc:  # OSError: a full disk, a folder we may not write
        err.print(f"[red]{exc}[/red]")
        return False
    console.print(
        f"restored the backup of {manifest['created']} into {data_dir}: {manifest['images']} images, "
        f"{len(manifest['files'])} files, every checksum verified",
        highlight=False,
    )
    return True
