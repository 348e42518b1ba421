"""Wall-clock overhead of the storage and the cache per trial (no compiling, no benchmarking).

    python benchmarks/overhead.py [--storage URL] [--trials 200]

Times what each trial costs besides iree-compile and the benchmark: Optuna ask + suggest +
tell with user attributes (TPE over a conv-sized space), and the cache's lookup, claim,
put and release. Default storage: a fresh SQLite file in a temporary folder, deleted after.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
import warnings

import optuna

from schedtune.store import Cache, cache_key


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--storage")
    parser.add_argument("--trials", type=int, default=200)
    args = parser.parse_args()
    if args.trials < 2:
        parser.error("--trials must be at least 2 (the report compares both halves)")
    warnings.filterwarnings("ignore")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.storage:
        run(args.storage, args.trials)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            run(f"sqlite:///{tmp}/overhead.db", args.trials)


def run(url: str, trials: int) -> None:
    storage = optuna.storages.RDBStorage(url)
    study = optuna.create_study(
        study_name=f"overhead-{uuid.uuid4().hex[:8]}",
        storage=storage,
        sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=8, multivariate=True, group=True),
    )
    cache = Cache(url)
    knobs = {f"k{i}": [1, 2, 4, 8, 16, 32] for i in range(7)}
    study_ms, cache_ms = [], []
    for n in range(trials):
        t0 = time.perf_counter()
        trial = study.ask()
        trial.set_user_attr("worker", "bench:1")
        values = {k: trial.suggest_categorical(k, v) for k, v in knobs.items()}
        trial.set_user_attr("config", str(values))
        t1 = time.perf_counter()
        key = cache_key(kind="trial", n=n, values=values, run=study.study_name)
        cache.get(key)
        cache.claim(key, "bench:1", 600)
        cache.put(key, "trial", "bench", {"status": "ok", "time_ns": float(n)})
        cache.release(key)
        t2 = time.perf_counter()
        trial.set_user_attr("status", "ok")
        study.tell(trial, float(sum(values.values())))
        t3 = time.perf_counter()
        study_ms.append(1e3 * ((t1 - t0) + (t3 - t2)))
        cache_ms.append(1e3 * (t2 - t1))
    cache.dispose()
    half = trials // 2
    print(f"storage {url.split('@')[-1]}, {trials} trials")
    print(
        f"optuna ask+suggest+tell: median {statistics.median(study_ms):.1f} ms/trial "
        f"(first half {statistics.median(study_ms[:half]):.1f}, second half {statistics.median(study_ms[half:]):.1f})"
    )
    print(f"cache lookup+claim+put+release: median {statistics.median(cache_ms):.1f} ms/trial")


if __name__ == "__main__":
    main()
