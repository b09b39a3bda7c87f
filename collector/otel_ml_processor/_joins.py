"""The join store: predictions wait for their outcomes and outcomes for their predictions, on disk.

One SQLite file, ``<state.directory>/joins.sqlite`` (in memory without a state directory), in WAL mode.
Every call is blocking and meant for one worker thread (the service runs them off the event loop);
:meth:`JoinStore.add` commits before it returns, so a request is acknowledged only once its records
are durable: with ``synchronous=NORMAL`` (the default) a killed process (kill -9) loses nothing
committed; ``outcomes.synchronous: full`` also survives a power loss, at an fsync per request.

Tables (compact: a waiting prediction costs ~100 bytes on disk):

* ``pred`` -- predictions, waiting or joined: a joined pair is the prediction's row with the outcome
  columns filled in place (no index changes, and pages touched in arrival order), so ``pred`` is also
  the evaluation store ``otel-ml outcomes export`` reads; ``outc`` -- outcomes waiting for their
  prediction. Rows are found by (model, id) through an index on (model, last 8 bytes of the id) -- half
  the size of an index of whole ids; the id itself is compared too, so a shared suffix costs a probe,
  never a wrong join (one key per (model, id) is kept by the batch logic, not by the index). The id is
  16 bytes for the library's keyed hash (:func:`._records.id_key`); times are milliseconds;
  probabilities float32; the trace and span id one 24-byte blob.
* The rowid (``seq``) follows arrival, and ``marks`` records the last ``seq`` of each request with its
  arrival time, so "oldest" is "smallest seq": TTL expiry (``outcomes.ttl`` after arrival; joined pairs
  go with their prediction) and the cap (``outcomes.max_pending`` rows of ``pred`` -- waiting or kept for
  export -- and of ``outc``; the oldest are evicted) are range deletes, with no time index. Within one
  request rows are ordered by key, not arrival.

A batch is joined set-wise in SQL (a temporary table of the batch joined against the other side), so
the per-record Python work is one tuple. Counted per model: duplicates (an outcome for an id that
already has one, joined or waiting; a prediction id seen before), expired predictions (still waiting
when removed by the TTL or the cap), outcomes that never found their prediction (``unmatched``).
"""

from __future__ import annotations

import collections
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from ._records import Outcome, Prediction

FILE_NAME = "joins.sqlite"
TTL = "ttl"
CAP = "cap"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS models(mid INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS versions(vid INTEGER PRIMARY KEY, mid INTEGER NOT NULL, version TEXT NOT NULL,
                                    UNIQUE(mid, version));
CREATE TABLE IF NOT EXISTS pred(seq INTEGER PRIMARY KEY, mid INTEGER, id BLOB, vid INTEGER, t INTEGER, lab TEXT,
                                val REAL, prob BLOB, trace BLOB, t_out INTEGER, t_join INTEGER, alab TEXT, aval REAL,
                                seg TEXT);
CREATE INDEX IF NOT EXISTS pred_key ON pred(mid, substr(id, -8));
CREATE TABLE IF NOT EXISTS outc(seq INTEGER PRIMARY KEY, mid INTEGER, id BLOB, vid INTEGER, t INTEGER, alab TEXT,
                                aval REAL);
CREATE INDEX IF NOT EXISTS outc_key ON outc(mid, substr(id, -8));
CREATE TABLE IF NOT EXISTS marks(tbl INTEGER, seq INTEGER, recv INTEGER, PRIMARY KEY(tbl, seq)) WITHOUT ROWID;
CREATE TEMP TABLE IF NOT EXISTS bp(mid INTEGER, id BLOB, vid INTEGER, t INTEGER, lab TEXT, val REAL, prob BLOB,
                                   trace BLOB, seg TEXT, PRIMARY KEY(mid, id)) WITHOUT ROWID;
CREATE TEMP TABLE IF NOT EXISTS bo(mid INTEGER, id BLOB, vid INTEGER, t INTEGER, alab TEXT, aval REAL,
                                   PRIMARY KEY(mid, id)) WITHOUT ROWID;
"""

_PAIR_COLUMNS = "mid, vid, id, t, t_out, t_join, lab, val, prob, trace, alab, aval, seg"
_TABLES = {"pred": 0, "outc": 1}


def _same_id(a: str, b: str) -> str:
    """SQL: rows ``a`` and ``b`` have the same (model, id); the suffix term lets SQLite use the index."""
    return f"{a}.mid = {b}.mid AND substr({a}.id, -8) = substr({b}.id, -8) AND {a}.id = {b}.id"


# The batch tables (bp, bo) against the stored ones.
_BP_STORED = f"EXISTS (SELECT 1 FROM pred p WHERE {_same_id('p', 'bp')})"
_BP_JOIN_OUTC = f"bp CROSS JOIN outc o ON {_same_id('o', 'bp')}"
_BO_STORED = f"EXISTS (SELECT 1 FROM pred p WHERE {_same_id('p', 'bo')})"
_BO_JOIN_PRED = f"bo CROSS JOIN pred p ON {_same_id('p', 'bo')}"
# An outcome is a duplicate when one for its id waits, or has joined its prediction.
_BO_DUPLICATE = (f"EXISTS (SELECT 1 FROM outc o WHERE {_same_id('o', 'bo')}) "
                 f"OR EXISTS (SELECT 1 FROM pred p WHERE {_same_id('p', 'bo')} AND p.t_join IS NOT NULL)")


@dataclass(frozen=True, slots=True)
class Pair:
    """One joined prediction and outcome (times in milliseconds since the epoch)."""

    model: str
    version: str
    key: bytes
    t_pred: int
    t_out: int
    t_join: int
    label: str | None
    value: float | None
    prob: bytes | None  # the probabilities, packed float32
    trace: bytes  # trace id + span id, or b""
    actual_label: str | None
    actual_value: float | None
    segments: str = ""  # the prediction's segments, packed (:func:`._segments.pack`)

    @property
    def proba(self) -> np.ndarray | None:
        """The probabilities (float32), or ``None``."""
        return None if self.prob is None else np.frombuffer(self.prob, np.float32)


@dataclass
class AddResult:
    """What one :meth:`JoinStore.add` did; counters are keyed by (model, version or "")."""

    pairs: list[Pair] = field(default_factory=list)
    duplicates: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    duplicate_predictions: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    predictions: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    evicted: collections.Counter[tuple[str, str, str]] = field(default_factory=collections.Counter)


@dataclass
class SweepResult:
    expired: collections.Counter[tuple[str, str, str]] = field(default_factory=collections.Counter)
    unmatched: collections.Counter[tuple[str, str, str]] = field(default_factory=collections.Counter)


def _ms(ns: int) -> int:
    return ns // 1_000_000


class JoinStore:
    """The SQLite join store (see the module docstring). Not thread-safe: one thread at a time."""

    def __init__(self, directory: str | None, *, ttl: float = 30 * 86400.0, max_pending: int = 10_000_000,
                 synchronous: str = "normal") -> None:
        self.path = ":memory:" if directory is None else os.path.join(directory, FILE_NAME)
        if directory is not None:
            os.makedirs(directory, exist_ok=True)
        self.ttl = ttl
        self.max_pending = max_pending
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
        self.db.execute("PRAGMA temp_store=MEMORY")
        self.db.executescript(_SCHEMA)
        if "seg" not in {row[1] for row in self.db.execute("PRAGMA table_info(pred)")}:  # a store from before segments
            self.db.execute("ALTER TABLE pred ADD COLUMN seg TEXT")
        self._models: dict[str, int] = dict(self.db.execute("SELECT name, mid FROM models"))
        self._model_names = {v: k for k, v in self._models.items()}
        self._versions: dict[tuple[int, str], int] = {
            (m, v): i for i, m, v in self.db.execute("SELECT vid, mid, version FROM versions")}
        self._version_names = {i: v for (m, v), i in self._versions.items()}
        self.pending_predictions = self.db.execute("SELECT count(*) FROM pred WHERE t_join IS NULL").fetchone()[0]
        self.pending_outcomes = self.db.execute("SELECT count(*) FROM outc").fetchone()[0]
        self._marked: dict[int, int] = dict(self.db.execute("SELECT tbl, max(seq) FROM marks GROUP BY tbl"))
        #: rows of ``pred``: waiting predictions and joined pairs kept for export (what the cap bounds)
        self.prediction_rows = self.db.execute("SELECT count(*) FROM pred").fetchone()[0]

    def close(self) -> None:
        self.db.close()

    # --- names ----------------------------------------------------------------------------------
    def _mid(self, model: str) -> int:
        mid = self._models.get(model)
        if mid is None:
            mid = self.db.execute("INSERT INTO models(name) VALUES (?)", (model,)).lastrowid
            assert mid is not None
            self._models[model] = mid
            self._model_names[mid] = model
        return mid

    def _vid(self, mid: int, version: str | None) -> int | None:
        if version is None:
            return None
        vid = self._versions.get((mid, version))
        if vid is None:
            vid = self.db.execute("INSERT INTO versions(mid, version) VALUES (?, ?)", (mid, version)).lastrowid
            assert vid is not None
            self._versions[(mid, version)] = vid
            self._version_names[vid] = version
        return vid

    def _names(self, mid: int, vid: int | None) -> tuple[str, str]:
        return self._model_names.get(mid, "?"), "" if vid is None else self._version_names.get(vid, "?")

    # --- ingest ---------------------------------------------------------------------------------
    def add(self, predictions: Sequence[Prediction], outcomes: Sequence[Outcome],
            now: float | None = None) -> AddResult:
        """Store a request's records, join what can be joined, commit; the new pairs and the counts."""
        now = time.time() if now is None else now
        t_join = int(now * 1000)
        res = AddResult()
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            if predictions:
                self._add_predictions(predictions, t_join, res)
            if outcomes:
                self._add_outcomes(outcomes, t_join, res)
            for table, tbl in _TABLES.items():
                (last,) = db.execute(f"SELECT max(seq) FROM {table}").fetchone()
                if last is not None and last > self._marked.get(tbl, 0):
                    db.execute("INSERT OR REPLACE INTO marks VALUES (?, ?, ?)", (tbl, last, int(now)))
                    self._marked[tbl] = last
            self._evict(res)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return res

    def _add_predictions(self, predictions: Sequence[Prediction], t_join: int, res: AddResult) -> None:
        db = self.db
        rows = []
        for p in predictions:
            mid = self._mid(p.model)
            prob = None if p.proba is None else np.asarray(p.proba, np.float32).tobytes()
            rows.append((mid, p.key, self._vid(mid, p.version), _ms(p.time_ns), p.label, p.value, prob,
                         p.trace or None, p.segments or None))
            res.predictions[(p.model, p.version)] += 1
        db.executemany("INSERT OR IGNORE INTO bp VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        inserted = db.execute("SELECT count(*) FROM bp").fetchone()[0]
        dup_rows = db.execute(f"SELECT mid, vid FROM bp WHERE {_BP_STORED}").fetchall()
        if len(rows) != inserted or dup_rows:
            self._count_dups(rows, inserted, dup_rows, res.duplicate_predictions)
            db.execute(f"DELETE FROM bp WHERE {_BP_STORED}")
        res.pairs.extend(self._pairs(db.execute(
            "INSERT INTO pred(mid, id, vid, t, lab, val, prob, trace, t_out, t_join, alab, aval, seg) "
            "SELECT bp.mid, bp.id, bp.vid, bp.t, bp.lab, bp.val, bp.prob, bp.trace, o.t, ?, o.alab, o.aval, bp.seg "
            f"FROM {_BP_JOIN_OUTC} RETURNING {_PAIR_COLUMNS}",
            (t_join,)).fetchall()))
        self.prediction_rows += len(res.pairs)
        if res.pairs:
            db.execute(f"DELETE FROM outc WHERE seq IN (SELECT o.seq FROM {_BP_JOIN_OUTC})")
            self.pending_outcomes -= db.execute("SELECT changes()").fetchone()[0]
        db.execute("INSERT INTO pred(mid, id, vid, t, lab, val, prob, trace, seg) "
                   f"SELECT mid, id, vid, t, lab, val, prob, trace, seg FROM bp WHERE NOT {_BP_STORED}")
        added = db.execute("SELECT changes()").fetchone()[0]
        self.pending_predictions += added
        self.prediction_rows += added
        db.execute("DELETE FROM bp")

    def _add_outcomes(self, outcomes: Sequence[Outcome], t_join: int, res: AddResult) -> None:
        db = self.db
        rows = []
        for o in outcomes:
            mid = self._mid(o.model)
            rows.append((mid, o.key, self._vid(mid, o.version), _ms(o.time_ns), o.label, o.value))
        db.executemany("INSERT OR IGNORE INTO bo VALUES (?, ?, ?, ?, ?, ?)", rows)
        inserted = db.execute("SELECT count(*) FROM bo").fetchone()[0]
        dup_rows = db.execute(f"SELECT mid, vid FROM bo WHERE {_BO_DUPLICATE}").fetchall()
        if len(rows) != inserted or dup_rows:
            self._count_dups(rows, inserted, dup_rows, res.duplicates)
            db.execute(f"DELETE FROM bo WHERE {_BO_DUPLICATE}")
        pairs = list(self._pairs(db.execute(
            "UPDATE pred SET (t_out, alab, aval) = (SELECT t, alab, aval FROM bo WHERE bo.mid = pred.mid AND "
            "bo.id = pred.id), t_join = ? "
            f"WHERE seq IN (SELECT p.seq FROM {_BO_JOIN_PRED}) "
            f"RETURNING {_PAIR_COLUMNS}", (t_join,)).fetchall()))
        self.pending_predictions -= len(pairs)
        res.pairs.extend(pairs)
        db.execute("INSERT INTO outc(mid, id, vid, t, alab, aval) SELECT mid, id, vid, t, alab, aval FROM bo "
                   f"WHERE NOT {_BO_STORED}")
        self.pending_outcomes += db.execute("SELECT changes()").fetchone()[0]
        db.execute("DELETE FROM bo")

    def _count_dups(self, rows: list[tuple], inserted: int, dup_rows: list[tuple[int, int | None]],
                    into: collections.Counter[tuple[str, str]]) -> None:
        for mid, vid in dup_rows:
            into[self._names(mid, vid)] += 1
        if len(rows) != inserted:  # the same id twice in this request: count the repeats
            seen: set[tuple[int, bytes]] = set()
            for r in rows:
                k = (r[0], r[1])
                if k in seen:
                    into[self._names(r[0], r[2])] += 1
                seen.add(k)

    def _pairs(self, rows: Iterable[tuple]) -> Iterator[Pair]:
        for mid, vid, key, t_pred, t_out, t_join, lab, val, prob, trace, alab, aval, seg in rows:
            model, version = self._names(mid, vid)
            yield Pair(model, version, key, t_pred, t_out, t_join, lab, val, prob, trace or b"", alab, aval,
                       seg or "")

    # --- expiry and the cap ---------------------------------------------------------------------
    def _evict(self, res: AddResult) -> None:
        """The cap: the oldest rows of a table beyond ``max_pending`` go (waiting ones are counted)."""
        for table, rows in (("pred", self.prediction_rows), ("outc", self.pending_outcomes)):
            over = rows - self.max_pending
            if over > 0:
                (edge,) = self.db.execute(f"SELECT seq FROM {table} ORDER BY seq LIMIT 1 OFFSET ?",
                                          (over - 1,)).fetchone()
                self._delete_through(table, edge, CAP, res.evicted)

    def _delete_through(self, table: str, edge: int, reason: str,
                        into: collections.Counter[tuple[str, str, str]]) -> int:
        """Delete rows with ``seq <= edge``; count the waiting ones into ``into``; the number counted."""
        waiting = "" if table == "outc" else " AND t_join IS NULL"
        total = 0
        rows = self.db.execute(f"SELECT mid, vid, count(*) FROM {table} WHERE seq <= ?{waiting} GROUP BY mid, vid",
                               (edge,)).fetchall()
        for mid, vid, count in rows:
            model, version = self._names(mid, vid)
            into[(model, version, reason)] += count
            total += count
        self.db.execute(f"DELETE FROM {table} WHERE seq <= ?", (edge,))
        if table == "pred":
            self.prediction_rows -= self.db.execute("SELECT changes()").fetchone()[0]
        self.db.execute("DELETE FROM marks WHERE tbl = ? AND seq <= ?", (_TABLES[table], edge))
        if table == "pred":
            self.pending_predictions -= total
        else:
            self.pending_outcomes -= total
        return total

    def sweep(self, now: float | None = None) -> SweepResult:
        """Delete what arrived more than ``ttl`` ago (waiting records are counted; joined pairs are kept for
        export as long as their prediction); commit."""
        now = time.time() if now is None else now
        cutoff = int(now - self.ttl)
        res = SweepResult()
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            for table, into in (("pred", res.expired), ("outc", res.unmatched)):
                (edge,) = db.execute("SELECT max(seq) FROM marks WHERE tbl = ? AND recv < ?",
                                     (_TABLES[table], cutoff)).fetchone()
                if edge is not None:
                    self._delete_through(table, edge, TTL, into)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return res

    # --- reading --------------------------------------------------------------------------------
    def recent_pairs(self, since_ms: int, limit: int) -> list[Pair]:
        """The newest joined pairs (at most ``limit`` per model version) joined at or after ``since_ms``."""
        out: list[Pair] = []
        for vid, in self.db.execute("SELECT DISTINCT vid FROM pred WHERE t_join >= ?", (since_ms,)).fetchall():
            rows = self.db.execute(f"SELECT {_PAIR_COLUMNS} FROM pred WHERE vid = ? AND t_join >= ? "
                                   "ORDER BY t_join DESC LIMIT ?", (vid, since_ms, limit)).fetchall()
            out.extend(reversed(list(self._pairs(rows))))
        out.sort(key=lambda p: p.t_join)
        return out

    def export_rows(self, model: str, version: str | None = None, since_ms: int | None = None,
                    until_ms: int | None = None) -> Iterator[Pair]:
        """Joined pairs of ``model`` (optionally one version) whose prediction time is in [since, until)."""
        mid = self._models.get(model)
        if mid is None:
            return
        sql = f"SELECT {_PAIR_COLUMNS} FROM pred WHERE mid = ? AND t_join IS NOT NULL"
        args: list[object] = [mid]
        if version is not None:
            vid = self._versions.get((mid, version))
            if vid is None:
                return
            sql += " AND vid = ?"
            args.append(vid)
        if since_ms is not None:
            sql += " AND t >= ?"
            args.append(since_ms)
        if until_ms is not None:
            sql += " AND t < ?"
            args.append(until_ms)
        yield from self._pairs(self.db.execute(sql + " ORDER BY seq", args))

    def nbytes(self) -> int:
        """Bytes on disk (database and WAL), or the in-memory database's pages."""
        page = self.db.execute("PRAGMA page_size").fetchone()[0]
        count = self.db.execute("PRAGMA page_count").fetchone()[0]
        wal = 0
        if self.path != ":memory:":
            try:
                wal = os.path.getsize(self.path + "-wal")
            except OSError:
                pass
        return int(page * count + wal)
