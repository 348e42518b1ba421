"""The Optuna storage behind a URL (SQLite by default, PostgreSQL for several machines)."""

from __future__ import annotations

import optuna

from ._cache import schema_lock


def get_storage(url: str) -> optuna.storages.RDBStorage:
    """The RDB storage at `url`; its tables are created under the schema lock, so workers
    starting together on a new database do not race to create them."""
    with schema_lock(url):
        return optuna.storages.RDBStorage(url)
