"""Model-level pass choices (data tiling, ukernels, im2col, fusion), decided before dispatches.

They change which dispatches exist, so each candidate is judged on the whole model
(numerics checked, interleaved benchmark) and dispatches are then tuned under the winner.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics

from .. import iree
from ..builds import ModelContext
from ..spaces import FlagCandidate
from ..store import Cache, cache_key

log = logging.getLogger("schedtune")


def spread(times: list[float]) -> float:
    """Relative spread of a build's rounds: (second slowest - second fastest) / median, so
    that one disturbed round (the machine is shared) does not make every build look tied;
    the full range when there are fewer than four rounds."""
    ordered = sorted(times)
    low, high = (ordered[1], ordered[-2]) if len(ordered) >= 4 else (ordered[0], ordered[-1])
    return (high - low) / statistics.median(ordered)


@dataclasses.dataclass
class FlagDecision:
    chosen: FlagCandidate
    rows: list[dict]  # one per candidate: name, flags, status, median_ms, speedup


def choose_flags(
    model: ModelContext,
    candidates: list[FlagCandidate],
    reference: list,
    cache: Cache,
    *,
    rounds: int = 5,
    min_gain: float = 0.03,
) -> FlagDecision:
    """Build every candidate, check its numerics, time them interleaved; the fastest by
    `min_gain` over the default is `chosen`. Rows keep each candidate's rounds and spread."""
    key = cache_key(
        kind="flags",
        method=4,
        model=model.build_key(),
        candidates=[dataclasses.asdict(c) for c in candidates],
        rounds=rounds,
        min_gain=min_gain,
    )
    hit = cache.get(key)
    by_name = {c.name: c for c in candidates}
    if hit is not None:
        return FlagDecision(by_name[hit["chosen"]], hit["rows"])
    work = model.workdir / "flags"
    built = {}
    rows = {c.name: {"name": c.name, "flags": list(c.flags), "status": "ok", "note": c.note} for c in candidates}
    for cand in candidates:
        res = model.compile(work, flags=model.flags + list(cand.flags), name=cand.name)
        if not res.ok:
            rows[cand.name].update(status=f"compile_{res.status}", error=res.error.splitlines()[0] if res.error else "")
            continue
        check = model.check(res.vmfb, work / f"run_{cand.name}", reference)
        if not check.ok:
            rows[cand.name].update(status=check.status.value, error=check.error, max_error=check.max_error)
            continue
        built[cand.name] = res.vmfb
    # Rounds long enough that one scheduling hiccup does not dominate a round.
    iterations = {}
    for name, vmfb in list(built.items()):
        try:
            iterations[name] = model.round_iterations(vmfb)
        except iree.ToolError as exc:
            rows[name].update(status="run_error", error=str(exc))
            del built[name]
    times: dict[str, list[float]] = {name: [] for name in built}
    for _ in range(rounds):
        for name, vmfb in list(built.items()):
            try:
                times[name].append(model.benchmark(vmfb, iterations[name]))
            except iree.ToolError as exc:  # hung or failed: this candidate is out, the rest go on
                rows[name].update(status="run_error", error=str(exc))
                del built[name], times[name]
    base = statistics.median(times["default"]) if "default" in times else None
    for name, ts in times.items():
        med = statistics.median(ts)
        rows[name].update(median_ms=med, rounds_ms=ts, spread=spread(ts))
        if base:
            rows[name]["speedup"] = base / med
    chosen = "default"
    best = base
    for name, ts in times.items():
        med = statistics.median(ts)
        if base and best and med < best and med < base * (1 - min_gain):
            chosen, best = name, med
    log.info("model-level flags: %s", chosen)
    result = FlagDecision(by_name[chosen], list(rows.values()))
    cache.put(key, "flags", "model flags", {"chosen": chosen, "rows": result.rows})
    return result
