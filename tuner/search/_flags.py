"""Model-level pass choices (data tiling, ukernels, im2col, fusion), decided before dispatches.

They change which dispatches exist, so each candidate is judged on the whole model
(numerics checked, interleaved benchmark) and dispatches are then tuned under the winner.
"""
from __future__ import annotations

import dataclasses
import logging
import statistics

from .. import iree
from ..evaluation import Cache, ModelContext, cache_key, outputs_match
from ..spaces import FlagCandidate

log = logging.getLogger("schedtune")


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
    key = cache_key(kind="flags", model=model.model_hash(), candidates=[dataclasses.asdict(c) for c in candidates],
                    rounds=rounds, min_gain=min_gain, **model.fingerprint)
    hit = cache.get(key)
    by_name = {c.name: c for c in candidates}
    if hit is not None:
        return FlagDecision(by_name[hit["chosen"]], hit["rows"])
    work = model.workdir / "flags"
    work.mkdir(parents=True, exist_ok=True)
    built = {}
    rows = {c.name: {"name": c.name, "flags": list(c.flags), "status": "ok", "note": c.note} for c in candidates}
    for cand in candidates:
        vmfb = work / f"{cand.name}.vmfb"
        res = iree.compile_model(model.source, vmfb, model.flags + list(cand.flags), timeout_s=model.compile_timeout_s)
        if not res.ok:
            rows[cand.name].update(status=f"compile_{res.status}", error=res.error.splitlines()[0] if res.error else "")
            continue
        run = iree.run_model(vmfb, model.entry, model.inputs, work / f"run_{cand.name}", timeout_s=model.run_timeout_s)
        ok, err = outputs_match(run.outputs, reference) if run.status == "ok" else (False, float("inf"))
        if not ok:
            rows[cand.name].update(status="wrong_result" if run.status == "ok" else "run_error", max_error=err)
            continue
        built[cand.name] = vmfb
    times: dict[str, list[float]] = {name: [] for name in built}
    for _ in range(rounds):
        for name, vmfb in built.items():
            times[name].append(iree.benchmark_model(vmfb, model.entry, model.inputs))
    base = statistics.median(times["default"]) if "default" in times else None
    for name, ts in times.items():
        rows[name]["median_ms"] = statistics.median(ts)
        if base:
            rows[name]["speedup"] = base / statistics.median(ts)
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


# Points of tunable share within which flag sets count as equally tunable.
TUNABLE_MARGIN = 0.05


def tuning_build(shares: dict[str, float], median_ms: dict[str, float], fastest: str) -> str:
    """The flag set to tune dispatches under: the fastest of those leaving (nearly) the most
    of the model's time in ops a spec can tune.

    Tunable time is where a search can gain (3x3 convs: 2.6-3.6x per dispatch here), while a
    flag set's own gain is fixed and rarely as large: on the CNN and ResNet, im2col alone
    measured 1.20x and 1.34x, but leaves 22-23 points less time tunable (its copies cannot
    be tuned), and tuning under it gave 1.24x / 1.43x against 2.89x / 3.11x under the default
    (CNN) and channels-last (ResNet) flags.
    The fastest flags alone are weighed against the tuned build at the export either way.
    """
    most = max(shares.values())
    if shares.get(fastest, 0.0) >= most - TUNABLE_MARGIN:
        return fastest
    tunable = [name for name, share in shares.items() if share >= most - TUNABLE_MARGIN]
    return min(tunable, key=median_ms.__getitem__)
