"""Tuning history: records of finished studies, a portable file format, and the mapping of a
record's config onto a new op (warm starts and zero-trial tuning).

Records come from two places: the finished studies in a storage (`collect_records`) and
records imported from history files into that storage (`import_records`, kept as hints).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math

from ..spaces import KnobSpace, loop_bounds, loop_names
from ..spec import CompilationConfig
from ..store import FORMAT, VERSION, Cache, Record, attrs, cache_key, read_records, write_records

log = logging.getLogger("schedtune")

__all__ = [
    "FORMAT",
    "VERSION",
    "Neighbour",
    "Record",
    "collect_records",
    "import_records",
    "imported_records",
    "map_config",
    "nearest",
    "read_records",
    "write_records",
]

# How far (log2 units over the loops' trip counts) a record may be from an op and still be
# tried on it: a factor of 4 on one loop, or of 2 on four.
MAX_DISTANCE = 2.0
# Added to the distance of a record measured under another compiler or CPU: it is still
# tried (and re-verified), but after records from this machine.
OTHER_MACHINE = 0.5
UNTILED_WEIGHT = 0.25


def collect_records(storage_url: str) -> list[Record]:
    """One record per finished study in the storage: its best config, with what it was
    measured against. Studies from before these attributes were stored are skipped."""
    import optuna

    records = []
    for summary in optuna.get_all_study_summaries(storage_url, include_best_trial=True):
        a = summary.user_attrs
        best = summary.best_trial
        if best is None or best.value is None or attrs.FINGERPRINT not in a or attrs.CONFIG not in best.user_attrs:
            continue
        try:
            record = _study_record(summary, a, best)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("history: study %s gives no record (%s)", summary.study_name, exc)
            continue
        records.append(record)
    return records


def _study_record(summary, a: dict, best) -> Record:
    fingerprint = json.loads(a[attrs.FINGERPRINT])
    record = Record(
        compiler=fingerprint["compiler"],
        cpu_model=fingerprint["cpu_model"],
        cpu_features=fingerprint["cpu_features"],
        family=a[attrs.FAMILY],
        op_name=a[attrs.OP_NAME],
        element_types=tuple(json.loads(a[attrs.ELEMENT_TYPES])),
        loops=tuple((n, int(b)) for n, b in json.loads(a[attrs.LOOP_ORDER])),
        flags=tuple(fingerprint["flags"]),
        config=CompilationConfig.from_json(json.loads(best.user_attrs[attrs.CONFIG])),
        time_ns=float(best.value),
        default_ns=float(a.get(attrs.DEFAULT_NS) or best.value),
        source=f"{summary.study_name.split(':')[0]}:{a.get(attrs.TARGET, '')}",
        trials=summary.n_trials,
    )
    problems = record.problems()
    if problems:
        raise ValueError(problems[0])
    return record


def import_records(cache: Cache, records: list[Record]) -> int:
    """Store records as hints in the storage; returns how many were new."""
    before = cache.count("history")
    for record in records:
        payload = record.to_json()
        cache.put(cache_key(kind="history", record=payload), "history", record.source or record.family, payload)
    return cache.count("history") - before


def imported_records(cache: Cache) -> list[Record]:
    """The imported records; one that fails the checks (planted in a shared storage, or stored
    by an older schedtune) is skipped with a warning."""
    records = []
    for payload in cache.entries("history"):
        try:
            records.append(Record.from_json(payload))
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("history: an imported record is skipped (%s)", exc)
    return records


@dataclasses.dataclass(frozen=True)
class Neighbour:
    record: Record
    distance: float
    same_machine: bool


def nearest(
    records: list[Record], root, fingerprint: dict, k: int = 3, max_distance: float = MAX_DISTANCE
) -> list[Neighbour]:
    """The `k` records nearest to `root`: same family, op and element types; distance over
    log2 trip counts of the loops both have (a loop only one has counts as a factor of 4)."""
    bounds = loop_bounds(root)
    found = []
    for record in records:
        if record.status != "ok" or record.time_ns >= record.default_ns * 1.0001:
            continue  # only configs that beat IREE's default where they were measured
        if (record.family, record.op_name, tuple(record.element_types)) != (
            root.family,
            root.op_name,
            tuple(root.element_types),
        ):
            continue
        other = record.loop_bounds
        aligned = _aligned(record, root)
        squares = [
            _weight(record, aligned[n]) * (math.log2(max(bounds[n], 1)) - math.log2(max(other[aligned[n]], 1))) ** 2
            if n in aligned
            else 4.0
            for n in bounds
        ]
        squares += [4.0 for n in other if n not in aligned.values()]
        distance = math.sqrt(sum(squares))
        same = (record.compiler, record.cpu_model, record.cpu_features) == (
            fingerprint["compiler"],
            fingerprint["cpu_model"],
            fingerprint["cpu_features"],
        )
        if distance <= max_distance:
            found.append(Neighbour(record, distance + (0 if same else OTHER_MACHINE), same))
    found.sort(key=lambda n: (n.distance, -n.record.speedup))
    return found[:k]


def _aligned(record: Record, root) -> dict[str, str]:
    """The op's loop names -> the record's. By name; for a named op (not linalg.generic) with
    as many loops, by position: its loops are in the op's fixed order even where a unit loop
    took another role (attention's batch of 1 reads as an `m` loop)."""
    names = loop_names(root)
    old = [n for n, _ in record.loops]
    if len(old) == len(names) and root.op_name != "linalg.generic" and set(old) != set(names):
        return dict(zip(names, old))
    return {n: n for n in names if n in old}


def _weight(record: Record, loop: str) -> float:
    """How much a loop's trip count matters for reusing the record's config: fully where the
    config splits it into tiles, a quarter where it takes it one at a time or whole (batch,
    heads, reduction windows): those choices carry over whatever the trip count."""
    names = [n for n, _ in record.loops]
    i, bound = names.index(loop), record.loop_bounds[loop]
    split = any(1 < sizes[i] < bound for sizes in record.config.tile_map.values() if len(sizes) == len(names))
    return 1.0 if split else UNTILED_WEIGHT


def map_config(record: Record, root, space: KnobSpace) -> CompilationConfig | None:
    """The record's config moved onto `root`: each tile taken from the matching loop (`_aligned`),
    scaled with the loop's trip count, snapped to the nearest legal value of `space`; a loop
    the record lacks takes IREE's default tile. None if the result breaks a constraint."""
    names = loop_names(root)
    bounds = loop_bounds(root)
    old_bounds = record.loop_bounds
    old_names = [n for n, _ in record.loops]
    aligned = _aligned(record, root)
    default = root.default_config.tile_map if root.default_config else {}
    if record.config.pipeline not in space.pipelines:
        return None
    tiles: dict[str, list[int]] = {}
    for level, sizes in record.config.tile_map.items():
        if len(sizes) != len(old_names):
            return None
        row = []
        for i, name in enumerate(names):
            if name in aligned:
                was = aligned[name]
                value = sizes[old_names.index(was)]
                if value == old_bounds[was] and value:  # a whole-loop tile stays whole
                    value = bounds[name]
            else:
                value = default.get(level, (0,) * len(names))[i]
            row.append(_snap(value, space.legal_values(level, name, bounds[name])))
        tiles[level] = row
    config = CompilationConfig.make(record.config.pipeline, tiles, record.config.loop_peeling)
    return None if space.check_config(config, root) else config


def _snap(value: int, legal: list[int]) -> int:
    if value in legal:
        return value
    if value == 0:
        return min(legal)
    positive = [v for v in legal if v > 0] or legal
    return min(positive, key=lambda v: (abs(math.log2(v) - math.log2(value)), v))
