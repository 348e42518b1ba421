"""Storage: the one database a job writes, and every view of it.

- the Optuna storage (`get_storage`), shared by workers through its URL;
- the names of the attributes schedtune keeps on studies and trials (`attrs`);
- the statuses a trial ends with (`TrialStatus`);
- the cache of every evaluated config (`Cache`, keyed by `cache_key`);
- history records, the portable file format of finished studies (`Record`).
"""

from . import attrs
from ._cache import Cache, cache_key, schema_lock
from ._records import FORMAT, VERSION, Record, read_records, write_records
from ._status import TrialStatus, spends_budget
from ._storage import get_storage
from ._worker import worker_dead, worker_id

__all__ = [
    "FORMAT",
    "VERSION",
    "Cache",
    "Record",
    "TrialStatus",
    "attrs",
    "cache_key",
    "get_storage",
    "read_records",
    "schema_lock",
    "spends_budget",
    "worker_dead",
    "worker_id",
    "write_records",
]
