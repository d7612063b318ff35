"""All vector SQL: per embedding model, one sqlite-vec ``vec0`` table of bit signatures and one
companion table of the float vectors, both keyed by image id.

Search is a two-step kNN: the ``vec0`` table gives the ``k * prefilter_factor`` nearest bit
signatures by Hamming distance (sqlite-vec's fast path), then those candidates' float vectors are
read by primary key and re-scored exactly (cosine). A signature is the signs of the centred vector
projected on ``2 * dim`` fixed random hyperplanes (SimHash): the centre (the mean vector, kept in
``vec_meta``) matters because image features are non-negative and would otherwise all share most
of their signs; it is re-estimated, and the signatures rewritten, while the table is small.
With fewer rows than candidates the search is exact.

Vectors live exactly as long as their image: the float table's id is a foreign key on
``images`` with ``ON DELETE CASCADE`` and a trigger takes the bit signature along (a ``vec0``
table cannot hold a foreign key itself); image ids are never reused (AUTOINCREMENT), so a new
image never finds an old vector under its id. These tables need the ``images`` table.
Synchronous on purpose: callers run it in a
thread with a connection of their own (``furrsight.db.engine.connect``).
"""

from __future__ import annotations

import re
import sqlite3
from functools import lru_cache

import numpy as np
from threadpoolctl import ThreadpoolController

CENTRE_SAMPLE = 4096  # vectors the centre is estimated from, at most
BLAS = ThreadpoolController()


def table_name(model: str) -> str:
    return "vec_" + re.sub(r"[^a-z0-9]", "_", model.lower())


def bit_width(dim: int) -> int:
    return max(64, (2 * dim + 7) // 8 * 8)


@lru_cache(maxsize=8)
def projection(dim: int) -> np.ndarray:
    """The fixed random hyperplanes of a dimension (same seed in every process)."""
    return np.random.default_rng(20261124 + dim).standard_normal((dim, bit_width(dim))).astype(np.float32)


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def signatures(vectors: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Packed sign bits of the centred, projected vectors: one row per vector.

    One BLAS thread: this small product runs beside model inference, and OpenBLAS's idle threads
    busy-wait (measured: the embedding job used 30% more CPU than a bare loop with them)."""
    with BLAS.limit(limits=1, user_api="blas"):
        return np.packbits((vectors - centre) @ projection(vectors.shape[1]) > 0, axis=1)


def has_table(conn: sqlite3.Connection, model: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table_name(model),)).fetchone()
    return row is not None


def link_ddl(name: str) -> list[str]:
    """The statements that tie a model's vectors to their images: the float table's id is a
    foreign key on ``images`` (a removed image takes its vector along), a vector for an image
    removed while its batch was being embedded is skipped, and the bit signature follows the
    float vector out. (Table names are ours: ``table_name`` keeps only [a-z0-9_].)"""
    return [
        f"CREATE TABLE IF NOT EXISTS {name}_f (id INTEGER PRIMARY KEY REFERENCES images (id) ON DELETE CASCADE, "
        "embedding BLOB NOT NULL)",
        f"""CREATE TRIGGER IF NOT EXISTS {name}_f_needs_image BEFORE INSERT ON {name}_f
            WHEN NOT EXISTS (SELECT 1 FROM images WHERE id = NEW.id) BEGIN SELECT RAISE(IGNORE); END""",  # noqa: S608
        f"""CREATE TRIGGER IF NOT EXISTS {name}_f_gone AFTER DELETE ON {name}_f
            BEGIN DELETE FROM {name} WHERE rowid = OLD.id; END""",  # noqa: S608
    ]


def ensure_table(conn: sqlite3.Connection, model: str, dim: int) -> str:
    name = table_name(model)
    conn.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS {name} USING vec0(bits bit[{bit_width(dim)}])")
    for statement in link_ddl(name):
        conn.execute(statement)
    conn.execute("CREATE TABLE IF NOT EXISTS vec_meta (model TEXT PRIMARY KEY, dim INTEGER, centre BLOB, n INTEGER)")
    return name


def _centre(conn: sqlite3.Connection, model: str) -> tuple[np.ndarray, int] | None:
    row = conn.execute("SELECT centre, n FROM vec_meta WHERE model = ?", (model,)).fetchone()
    return None if row is None else (np.frombuffer(row[0], dtype=np.float32), int(row[1]))


def _write_bits(conn: sqlite3.Connection, name: str, ids: list[int], bits: np.ndarray) -> None:
    conn.executemany(f"DELETE FROM {name} WHERE rowid = ?", [(i,) for i in ids])  # noqa: S608
    conn.executemany(
        f"INSERT INTO {name}(rowid, bits) VALUES (?, vec_bit(?))",  # noqa: S608
        [(i, b.tobytes()) for i, b in zip(ids, bits, strict=True)],
    )


def _recentre(conn: sqlite3.Connection, model: str, name: str) -> None:
    """Estimate the centre again from the stored vectors and rewrite every signature."""
    ids, data = _floats(conn, name)
    sample = data[np.random.default_rng(0).permutation(len(ids))[:CENTRE_SAMPLE]]
    centre = sample.mean(axis=0).astype(np.float32)
    conn.execute(
        "INSERT OR REPLACE INTO vec_meta VALUES (?, ?, ?, ?)", (model, data.shape[1], centre.tobytes(), len(sample))
    )
    conn.execute(f"DELETE FROM {name}")  # noqa: S608
    for lo in range(0, len(ids), 5000):
        _write_bits(conn, name, ids[lo : lo + 5000], signatures(data[lo : lo + 5000], centre))


def put(conn: sqlite3.Connection, model: str, ids: list[int], vectors: np.ndarray) -> list[int]:
    """Store vectors (normalised here) for image ids, replacing existing ones, in one transaction;
    returns the ids stored (an image removed meanwhile gets none)."""
    if not ids:
        return []
    vectors = normalise(vectors)
    name = ensure_table(conn, model, vectors.shape[1])
    conn.execute("BEGIN IMMEDIATE")
    try:
        known = _centre(conn, model)
        if known is None:
            known = (vectors.mean(axis=0).astype(np.float32), len(ids))
            conn.execute(
                "INSERT INTO vec_meta VALUES (?, ?, ?, ?)", (model, vectors.shape[1], known[0].tobytes(), known[1])
            )
        conn.executemany(
            f"INSERT OR REPLACE INTO {name}_f(id, embedding) VALUES (?, ?)",  # noqa: S608
            [(i, v.tobytes()) for i, v in zip(ids, vectors, strict=True)],
        )
        stored = _present(conn, name, ids)
        if len(stored) < len(ids):
            have = set(stored)
            keep = [i in have for i in ids]
            ids, vectors = [i for i, k in zip(ids, keep, strict=True) if k], vectors[np.array(keep)]
        _write_bits(conn, name, ids, signatures(vectors, known[0]))
        total = _count(conn, name)
        if known[1] < CENTRE_SAMPLE and total >= 4 * known[1]:
            _recentre(conn, model, name)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return ids


def _present(conn: sqlite3.Connection, name: str, ids: list[int]) -> list[int]:
    marks = ",".join("?" * len(ids))
    return [r[0] for r in conn.execute(f"SELECT id FROM {name}_f WHERE id IN ({marks})", ids)]  # noqa: S608


def _count(conn: sqlite3.Connection, name: str) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {name}_f").fetchone()[0])  # noqa: S608


def count(conn: sqlite3.Connection, model: str) -> int:
    return _count(conn, table_name(model)) if has_table(conn, model) else 0


def get(conn: sqlite3.Connection, model: str, image_id: int) -> np.ndarray | None:
    if not has_table(conn, model):
        return None
    row = conn.execute(f"SELECT embedding FROM {table_name(model)}_f WHERE id = ?", (image_id,)).fetchone()  # noqa: S608
    return None if row is None else np.frombuffer(row[0], dtype=np.float32)


def without_vector(conn: sqlite3.Connection, model: str, ids: list[int]) -> list[int]:
    """Those of ``ids`` that have no vector for ``model`` yet, in their order."""
    if not has_table(conn, model):
        return list(ids)
    have = {r[0] for r in conn.execute(f"SELECT id FROM {table_name(model)}_f")}  # noqa: S608
    return [i for i in ids if i not in have]


def models_of(conn: sqlite3.Connection, image_id: int) -> list[str]:
    """The models that have a vector for the image."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'vec_meta'").fetchone():
        return []
    models = [r[0] for r in conn.execute("SELECT model FROM vec_meta ORDER BY model")]
    return [m for m in models if get(conn, m, image_id) is not None]


def _floats(conn: sqlite3.Connection, name: str, ids: list[int] | None = None) -> tuple[list[int], np.ndarray]:
    if ids is None:
        rows = conn.execute(f"SELECT id, embedding FROM {name}_f ORDER BY id").fetchall()  # noqa: S608
    else:
        marks = ",".join("?" * len(ids))
        rows = conn.execute(f"SELECT id, embedding FROM {name}_f WHERE id IN ({marks})", ids).fetchall()  # noqa: S608
    if not rows:
        return [], np.zeros((0, 0), np.float32)
    return [r[0] for r in rows], np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)


def knn(
    conn: sqlite3.Connection,
    model: str,
    query: np.ndarray,
    k: int,
    *,
    prefilter_factor: int = 10,
    exclude: int | None = None,
) -> list[tuple[int, float]]:
    """The ``k`` nearest images to ``query``: (image id, cosine similarity), nearest first."""
    known = _centre(conn, model) if has_table(conn, model) else None
    if known is None:
        return []
    name = table_name(model)
    q = normalise(query.reshape(1, -1))
    want = k + (1 if exclude is not None else 0)
    bits = signatures(q, known[0])[0]
    candidates = conn.execute(
        f"SELECT rowid FROM {name} WHERE bits MATCH vec_bit(?) AND k = ?",  # noqa: S608
        (bits.tobytes(), max(want * prefilter_factor, 100)),
    ).fetchall()
    ids, data = _floats(conn, name, [c[0] for c in candidates])
    if not ids:
        return []
    scores = data @ q[0]
    order = np.argsort(-scores, kind="stable")
    return [(ids[i], float(scores[i])) for i in order if ids[i] != exclude][:k]


def all_vectors(conn: sqlite3.Connection, model: str) -> tuple[list[int], np.ndarray]:
    return _floats(conn, table_name(model)) if has_table(conn, model) else ([], np.zeros((0, 0), np.float32))


def delete(conn: sqlite3.Connection, model: str, ids: list[int]) -> None:
    if has_table(conn, model):
        name = table_name(model)
        conn.executemany(f"DELETE FROM {name} WHERE rowid = ?", [(i,) for i in ids])  # noqa: S608
        conn.executemany(f"DELETE FROM {name}_f WHERE id = ?", [(i,) for i in ids])  # noqa: S608
