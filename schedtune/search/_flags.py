"""Model-level pass choices (data tiling, ukernels, im2col, fusion), decided before dispatches.

They change which dispatches exist, so each candidate is judged on the whole model
(numerics checked, interleaved benchmark) and dispatches are then tuned under the winner.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
import time

from .. import iree
from ..builds import ModelContext
from ..spaces import FlagCandidate
from ..store import Cache, cache_key
from ._builds import within_reach

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


def _cached_decision(hit, by_name: dict[str, FlagCandidate]) -> FlagDecision | None:
    """A stored decision, its flags taken from today's candidates, never from the storage:
    whoever can write a shared database must not choose what is compiled. One that does not
    name today's candidates is measured again."""
    if hit is None:
        return None
    rows = hit.get("rows") if isinstance(hit, dict) else None
    if (
        not isinstance(rows, list)
        or hit.get("chosen") not in by_name
        or not all(isinstance(r, dict) and r.get("name") in by_name for r in rows)
    ):
        log.warning("a stored flag decision does not name the flag candidates: measured again")
        return None
    rows = [{**r, "flags": list(by_name[r["name"]].flags)} for r in rows]
    return FlagDecision(by_name[hit["chosen"]], rows)


def choose_flags(
    model: ModelContext,
    candidates: list[FlagCandidate],
    reference: list,
    cache: Cache,
    *,
    rounds: int = 5,
    min_gain: float = 0.03,
    deadline: float | None = None,
    error_budget=lambda flags: None,
) -> FlagDecision:
    """Build every candidate, check its numerics, time them interleaved; the fastest by
    `min_gain` over the default is `chosen`. Rows keep each candidate's rounds and spread.

    A candidate out of reach of the fastest (`within_reach`) after a round runs no more rounds
    (`raced_out_after`); IREE's default always runs them all, as the baseline. Past `deadline`
    no more candidates are built (status `skipped`, and the decision is not cached) and no
    round after the second is started.
    `error_budget(flags)`: the relative L2 error a candidate may have (one that demotes
    arithmetic on purpose), or None for the element type's own tolerances; every candidate's
    measured error is kept in its row (`max_error`)."""
    key = cache_key(
        kind="flags",
        method=5,
        model=model.build_key(),
        candidates=[dataclasses.asdict(c) for c in candidates],
        rounds=rounds,
        min_gain=min_gain,
        error_budgets=[error_budget(c.flags) for c in candidates],
    )
    by_name = {c.name: c for c in candidates}
    cached = _cached_decision(cache.get(key), by_name)
    if cached is not None:
        return cached
    work = model.workdir / "flags"
    built = {}
    rows = {c.name: {"name": c.name, "flags": list(c.flags), "status": "ok", "note": c.note} for c in candidates}
    complete = True
    for cand in candidates:
        if cand.name != "default" and deadline is not None and time.monotonic() > deadline:
            rows[cand.name].update(status="skipped", error="the model-level stage's time ran out")
            complete = False
            continue
        started = time.monotonic()
        res = model.compile(work, flags=model.flags + list(cand.flags), name=cand.name)
        if not res.ok:
            rows[cand.name].update(status=f"compile_{res.status}", error=res.error.splitlines()[0] if res.error else "")
        else:
            budget = error_budget(cand.flags)
            check = model.check(res.vmfb, work / f"run_{cand.name}", reference, error_budget=budget)
            rows[cand.name].update(max_error=check.max_error, error_budget=budget)
            if check.ok:
                built[cand.name] = res.vmfb
            else:
                rows[cand.name].update(status=check.status.value, error=check.error)
        log.info("flag set %s: %s in %.0f s", cand.name, rows[cand.name]["status"], time.monotonic() - started)
    # Rounds long enough that one scheduling hiccup does not dominate a round.
    iterations = {}
    for name, vmfb in list(built.items()):
        try:
            iterations[name] = model.round_iterations(vmfb)
        except iree.ToolError as exc:
            rows[name].update(status="run_error", error=str(exc))
            del built[name]
    times: dict[str, list[float]] = {name: [] for name in built}
    racing = dict(built)
    for done in range(1, rounds + 1):
        for name, vmfb in list(racing.items()):
            try:
                times[name].append(model.benchmark(vmfb, iterations[name]))
            except iree.ToolError as exc:  # hung or failed: this candidate is out, the rest go on
                rows[name].update(status="run_error", error=str(exc))
                del racing[name], times[name]
        if done == rounds or not times:
            continue
        if deadline is not None and time.monotonic() > deadline and done >= 2:
            log.info("model-level flags: time is up after %d rounds", done)
            break
        fastest = min(statistics.median(ts) for ts in times.values())
        for name in list(racing):
            if name != "default" and not within_reach(statistics.median(times[name]), fastest):
                rows[name]["raced_out_after"] = done
                del racing[name]
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
    if complete:
        cache.replace(key, "flags", "model flags", {"chosen": chosen, "rows": result.rows})
    return result
