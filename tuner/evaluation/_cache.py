"""Every evaluated config, keyed by what determines its result; lives in the study's database.

Keeping the cache in the same database as Optuna's studies means one URL configures a job,
and several machines on one PostgreSQL server share both.
"""
from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import sqlalchemy as sa

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


def cache_key(**parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class Cache:
    def __init__(self, url: str) -> None:
        self._engine = sa.create_engine(url, pool_pre_ping=True)
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
            taken = conn.execute(
                _CLAIMS.update()
                .where(_CLAIMS.c.key == key, _CLAIMS.c.created < now - stale_after_s)
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

    def dispose(self) -> None:
        self._engine.dispose()
