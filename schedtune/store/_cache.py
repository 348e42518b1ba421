"""Every evaluated config, keyed by what determines its result; lives in the study's database.

Keeping the cache in the same database as Optuna's studies means one URL configures a job,
and several machines on one PostgreSQL server share both.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from typing import Any

import sqlalchemy as sa

from .._version import __version__
from ._worker import worker_dead

_METADATA = sa.MetaData()
_TABLE = sa.Table(
    "schedtune_cache",
    _METADATA,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("label", sa.String(256), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
)


_CLAIMS = sa.Table(
    "schedtune_claims",
    _METADATA,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("worker", sa.String(256), nullable=False),
    sa.Column("created", sa.Float, nullable=False),
)


# Bumped when what a verdict means changes (spec rendering, trial builds, numeric tolerances):
# with the package version it is part of every key, so an upgrade does not reuse old verdicts.
VERDICTS_VERSION = 2


def cache_key(**parts: Any) -> str:
    versioned = {**parts, "tuner": f"{__version__}/{VERDICTS_VERSION}"}
    return hashlib.sha256(json.dumps(versioned, sort_keys=True, default=str).encode()).hexdigest()


@contextlib.contextmanager
def schema_lock(url: str):
    """Serialise first-time table creation between workers starting together on PostgreSQL.

    `CREATE TABLE IF NOT EXISTS` is not race-free there: two processes creating Optuna's and
    our tables at once fail on the catalog's unique index. SQLite needs no lock.
    """
    if not url.startswith("postgresql"):
        yield
        return
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(7261535)"))
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(7261535)"))
    finally:
        engine.dispose()


class Cache:
    def __init__(self, url: str) -> None:
        self._engine = sa.create_engine(url, pool_pre_ping=True)
        with schema_lock(url):
            _METADATA.create_all(self._engine, checkfirst=True)

    def get(self, key: str) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(_TABLE.c.payload).where(_TABLE.c.key == key)).first()
        return json.loads(row[0]) if row else None

    def put(self, key: str, kind: str, label: str, payload: dict[str, Any]) -> None:
        """First writer wins: a concurrent worker's identical entry is not an error."""
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    _TABLE.insert().values(
                        key=key, kind=kind, label=label[:256], payload=json.dumps(payload), created=time.time()
                    )
                )
        except sa.exc.IntegrityError:
            pass

    def replace(self, key: str, kind: str, label: str, payload: dict[str, Any]) -> None:
        """Overwrite an entry (or create it): for verdicts withdrawn after the fact."""
        with self._engine.begin() as conn:
            updated = conn.execute(_TABLE.update().where(_TABLE.c.key == key).values(payload=json.dumps(payload)))
        if updated.rowcount == 0:
            self.put(key, kind, label, payload)

    def setdefault(self, key: str, kind: str, label: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Store `payload` unless `key` holds one already; return the stored one (first writer wins)."""
        self.put(key, kind, label, payload)
        stored = self.get(key)
        assert stored is not None
        return stored

    def claim(self, key: str, worker: str, stale_after_s: float) -> bool:
        """Reserve a config for evaluation so no other worker compiles it at the same time.

        A claim older than `stale_after_s` belongs to a worker that died mid-trial and is taken over.
        """
        now = time.time()
        try:
            with self._engine.begin() as conn:
                conn.execute(_CLAIMS.insert().values(key=key, worker=worker, created=now))
            return True
        except sa.exc.IntegrityError:
            pass
        with self._engine.begin() as conn:
            row = conn.execute(sa.select(_CLAIMS.c.worker, _CLAIMS.c.created).where(_CLAIMS.c.key == key)).first()
            if row is None:
                return self.claim(key, worker, stale_after_s)
            if not (row.created < now - stale_after_s or worker_dead(row.worker)):
                return False
            # Conditional on the old holder, so two workers taking over the same claim cannot both win.
            taken = conn.execute(
                _CLAIMS.update()
                .where(_CLAIMS.c.key == key, _CLAIMS.c.worker == row.worker, _CLAIMS.c.created == row.created)
                .values(worker=worker, created=now)
            )
            return taken.rowcount == 1

    def release(self, key: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(_CLAIMS.delete().where(_CLAIMS.c.key == key))

    def count(self, kind: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(_TABLE)
        if kind:
            query = query.where(_TABLE.c.kind == kind)
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def entries(self, kind: str) -> list[dict[str, Any]]:
        """Every payload of one kind, oldest first."""
        query = sa.select(_TABLE.c.payload).where(_TABLE.c.kind == kind).order_by(_TABLE.c.created)
        with self._engine.connect() as conn:
            return [json.loads(row[0]) for row in conn.execute(query)]

    def dispose(self) -> None:
        self._engine.dispose()
