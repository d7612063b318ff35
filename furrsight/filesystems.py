"""What a folder is stored on, from the kernel's mount table: the filesystem's kind, its device
or share, and for ext4 whether it keeps a journal. ``furrsight doctor`` warns from it about a
data directory on a network filesystem, in memory, or on an ext4 without a journal; the ingest
benchmark names it beside its figures."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

NETWORK_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "ceph", "glusterfs", "fuse.glusterfs", "fuse.sshfs", "afs", "lustre"}
)


@dataclass(frozen=True)
class Filesystem:
    """What a folder is stored on, as the kernel's mount table says."""

    kind: str  # ext4, xfs, tmpfs, nfs4, ...
    source: str  # the device, or the server's share
    journal: bool | None = None  # ext4 only: whether it keeps a journal (None: not ext4, or unknown)

    @property
    def network(self) -> bool:
        return self.kind in NETWORK_FILESYSTEMS

    @property
    def in_memory(self) -> bool:
        return self.kind in ("tmpfs", "ramfs")

    def __str__(self) -> str:
        journal = {True: ", with a journal", False: " without a journal", None: ""}[self.journal]
        return f"{self.kind} ({self.source}){journal}"


def _unescape(field: str) -> str:
    """A mount table field: spaces, tabs, newlines and backslashes come as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def filesystem_of(path: Path | str, proc: Path = Path("/proc")) -> Filesystem | None:
    """The filesystem ``path`` is on: the mount whose mount point is the longest prefix of its real
    path (``/proc/self/mountinfo``); None without a mount table (not Linux). For ext4, whether it
    keeps a journal: the kernel lists a journal of device ``sda1`` as ``/proc/fs/jbd2/sda1-8``."""
    try:
        table = (proc / "self" / "mountinfo").read_text()
    except OSError:
        return None
    real = Path(path).resolve()
    best: tuple[int, Filesystem] | None = None
    for line in table.splitlines():
        fields = line.split()
        if "-" not in fields[6:]:
            continue
        mount = Path(_unescape(fields[4]))
        rest = fields[fields.index("-", 6) + 1 :]
        if len(rest) < 2 or not (real == mount or real.is_relative_to(mount)):
            continue
        if best is None or len(mount.parts) >= best[0]:  # the later of two mounts on one point wins
            best = (len(mount.parts), Filesystem(rest[0], _unescape(rest[1])))
    if best is None:
        return None
    found = best[1]
    if found.kind == "ext4":
        name = Path(found.source).resolve().name  # /dev/mapper/vg-data -> dm-0: the kernel's name
        if (proc / "fs" / "ext4" / name).is_dir():
            journalled = any((proc / "fs" / "jbd2").glob(f"{name}-*"))
            found = Filesystem(found.kind, found.source, journalled)
    return found
