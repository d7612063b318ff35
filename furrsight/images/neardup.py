"""Near-duplicate groups: images whose perceptual hashes are within a Hamming distance.

A group is named by the smallest image id in it. Joining is transitive: an image matching
members of two groups merges them.

Finding the matches is the hot part of ingest (every new image is compared with every stored
one), so each process keeps the hashes in memory as one ``uint64`` array and compares them all
at once with numpy (``bitwise_count``): about 0.3 ms per image against 100,000 stored ones, where
a row scan in Python took longer than the whole rest of ingest, and sqlite-vec's ``bit[64]``
kNN 3.8 ms. The array stays right across processes through ``phash_log``, a change log that
triggers on ``images`` fill (migration ``images_2026_11_24t03_40``): before each use, inside the
caller's write transaction, the index reads the log past the last change it has seen.

Synchronous on purpose: the ingest recorder and the re-process job call these in the recorder's
thread, on its connection, inside its write transaction.
"""

from __future__ import annotations

import sqlite3
import threading

import numpy as np

KEEP_LOG = 100_000  # log rows kept; an index further behind than this reloads in full


class PhashIndex:
    """Every image's perceptual hash, in memory, caught up from ``phash_log`` on each use."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ids = np.zeros(0, dtype=np.int64)
        self.hashes = np.zeros(0, dtype=np.uint64)
        self.size = 0
        self.where: dict[int, int] = {}  # image id -> slot
        self.seq = -1  # last log row applied; -1: never loaded

    def invalidate(self) -> None:
        """After a rollback (the log's sequence numbers get reused): reload on next use."""
        self.seq = -1

    def _put(self, image_id: int, phash: str | None) -> None:
        slot = self.where.get(image_id)
        if phash is None:
            if slot is not None:
                self.ids[slot] = -1  # a hole: never matches (see matches())
                del self.where[image_id]
            return
        value = np.uint64(int(phash, 16))
        if slot is None:
            if self.size == len(self.ids):
                grow = max(1024, self.size)
                self.ids = np.concatenate([self.ids, np.full(grow, -1, dtype=np.int64)])
                self.hashes = np.concatenate([self.hashes, np.zeros(grow, dtype=np.uint64)])
            slot = self.where[image_id] = self.size
            self.size += 1
            self.ids[slot] = image_id
        self.hashes[slot] = value

    def _reload(self, conn: sqlite3.Connection) -> None:
        (self.seq,) = conn.execute("SELECT coalesce(max(seq), 0) FROM phash_log").fetchone()
        rows = conn.execute("SELECT id, phash FROM images WHERE phash IS NOT NULL").fetchall()
        self.size, self.where = 0, {}
        self.ids = np.full(max(1024, len(rows)), -1, dtype=np.int64)
        self.hashes = np.zeros(len(self.ids), dtype=np.uint64)
        for image_id, phash in rows:
            self._put(image_id, phash)

    def catch_up(self, conn: sqlite3.Connection) -> None:
        """Apply the changes logged since the last call (call inside the write transaction)."""
        if self.seq >= 0:
            (oldest,) = conn.execute("SELECT min(seq) FROM phash_log").fetchone()
            if oldest is not None and oldest > self.seq + 1:
                self.seq = -1  # the log was pruned past us
        if self.seq < 0:
            self._reload(conn)
            return
        changes = conn.execute(
            "SELECT l.seq, l.image_id, i.phash FROM phash_log l LEFT JOIN images i ON i.id = l.image_id "
            "WHERE l.seq > ? ORDER BY l.seq",
            (self.seq,),
        ).fetchall()
        for seq, image_id, phash in changes:
            self._put(image_id, phash)
            self.seq = seq

    def matches(self, phash: str, distance: int, exclude: int) -> list[int]:
        """Ids of the images within ``distance`` bits of ``phash`` (``exclude`` left out)."""
        if self.size == 0:
            return []
        query = np.uint64(int(phash, 16))
        near = np.bitwise_count(self.hashes[: self.size] ^ query) <= distance
        ids = self.ids[: self.size][near]
        return [int(i) for i in ids if i >= 0 and i != exclude]


_INDEXES: dict[str, PhashIndex] = {}
_INDEXES_LOCK = threading.Lock()


def index_for(db_path: str) -> PhashIndex:
    """The process's index of one database file (shared by every recorder in the process)."""
    with _INDEXES_LOCK:
        return _INDEXES.setdefault(db_path, PhashIndex())


def prune_log(conn: sqlite3.Connection) -> None:
    """Keep the change log short; an index that falls further behind reloads in full."""
    conn.execute("DELETE FROM phash_log WHERE seq < (SELECT max(seq) FROM phash_log) - ?", (KEEP_LOG,))


def _in(ids: list[int]) -> str:
    return ",".join("?" * len(ids))


def assign_group(conn: sqlite3.Connection, index: PhashIndex, image_id: int, phash: str, distance: int) -> int | None:
    """Put ``image_id`` into the group of its near-duplicates (merging groups); returns it."""
    with index.lock:
        index.catch_up(conn)
        matches = index.matches(phash, distance, image_id)
    if not matches:
        return None  # a new row has no group; a re-processed one left its group first
    groups: set[int] = set()
    loose: list[int] = []  # matches in no group yet
    for start in range(0, len(matches), 500):
        chunk = matches[start : start + 500]
        rows = conn.execute(f"SELECT id, near_dup_group FROM images WHERE id IN ({_in(chunk)})", chunk)  # noqa: S608
        for match, group in rows:
            if group is None:
                loose.append(match)
            else:
                groups.add(group)
    target = min([*groups, image_id, *matches])
    ids = [image_id, *loose]  # members of the target group already are left alone
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        conn.execute(f"UPDATE images SET near_dup_group = ? WHERE id IN ({_in(chunk)})", [target, *chunk])  # noqa: S608
    others = sorted(groups - {target})
    if others:
        conn.execute(
            f"UPDATE images SET near_dup_group = ? WHERE near_dup_group IN ({_in(others)})",  # noqa: S608
            [target, *others],
        )
    return target


def leave_group(conn: sqlite3.Connection, image_id: int) -> None:
    """Take an image out of its group (before re-hashing or deleting it); a group left with one
    member ends; a group that loses its smallest id is renamed after the next smallest."""
    row = conn.execute("SELECT near_dup_group FROM images WHERE id = ?", (image_id,)).fetchone()
    group = row[0] if row else None
    if group is None:
        return
    conn.execute("UPDATE images SET near_dup_group = NULL WHERE id = ?", (image_id,))
    members = [m for (m,) in conn.execute("SELECT id FROM images WHERE near_dup_group = ?", (group,))]
    if len(members) == 1:
        conn.execute("UPDATE images SET near_dup_group = NULL WHERE id = ?", (members[0],))
    elif members and group not in members:
        conn.execute("UPDATE images SET near_dup_group = ? WHERE near_dup_group = ?", (min(members), group))
