"""Workers starting one study together agree on its search space and never exceed its budget."""

from __future__ import annotations

import optuna

from schedtune.proposers import HeuristicProposer, ProposalRequest
from schedtune.search import tune_target
from schedtune.spaces import load_space
from schedtune.store import cache_key

from .conftest import matmul_setup


def _matmul(tmp_path):
    target, url, evaluator = matmul_setup(tmp_path)
    space = load_space("matmul")
    skeletons = HeuristicProposer().propose(ProposalRequest(target, space)).skeletons
    assert len(skeletons) >= 2
    return target, url, evaluator, space, skeletons


def test_second_worker_adopts_the_first_workers_skeletons(tmp_path):
    """Worker A fixed the study's skeletons but has not yet written them to the study when
    worker B (with other skeletons, e.g. from its own LLM call) opens it: B must search A's space,
    or Optuna's distributions would clash within one study."""
    target, url, evaluator, space, skeletons = _matmul(tmp_path)
    first, other = skeletons[:1], skeletons[1:]
    evaluator.cache.setdefault(
        cache_key(kind="study_skeletons", study="job:k:b"),
        "study",
        "job:k:b",
        {"skeletons": [s.to_json() for s in first]},
    )
    outcome = tune_target(
        target, space, other, {}, evaluator, storage=url, study_name="job:k:b", trials=2, sampler="random", seed=0
    )
    assert outcome.skeletons == first
    study = optuna.load_study(study_name="job:k:b", storage=url)
    assert {t.params["skeleton"] for t in study.trials} == {first[0].name}


def test_trial_beyond_a_budget_filled_by_another_worker_is_not_compiled(tmp_path, monkeypatch):
    """Both workers see one free slot and ask at once; the other's trial got the lower number.
    Ours must give way (free, not compiled) instead of both filling the last slot."""
    target, url, evaluator, space, skeletons = _matmul(tmp_path)
    ask = optuna.Study.ask
    other_numbers = []

    def ask_racing_another_worker(self, *args, **kwargs):
        if not other_numbers:
            other = ask(self)
            other.set_user_attr("worker", "other-host:1:0")
            other_numbers.append(other.number)
        return ask(self, *args, **kwargs)

    monkeypatch.setattr(optuna.Study, "ask", ask_racing_another_worker)
    compiles = evaluator.compiles
    outcome = tune_target(
        target, space, skeletons, {}, evaluator, storage=url, study_name="job:k:c", trials=1, sampler="random", seed=0
    )
    assert evaluator.compiles == compiles
    assert outcome.trials == 0
    study = optuna.load_study(study_name="job:k:c", storage=url)
    mine = [t for t in study.get_trials() if t.number not in other_numbers]
    assert mine and [t.user_attrs.get("status") for t in mine] == ["over_budget"]


def test_export_waits_for_a_worker_that_goes_on_after_a_free_trial(tmp_path):
    """The exporting worker must not take a moment with nothing running for the end: another
    worker whose trial turned out free asks its next one right after (CI saw the exporter mark
    that fresh trial lost, and the other worker crash on it)."""
    import threading
    import time

    from schedtune.search import settle

    target, url, evaluator, space, skeletons = _matmul(tmp_path)
    outcome = tune_target(
        target, space, skeletons, {}, evaluator, storage=url, study_name="job:k:d", trials=0, sampler="random", seed=0
    )
    study = optuna.load_study(study_name="job:k:d", storage=url)
    first = study.ask()
    first.set_user_attr("worker", "other-host:1")

    def other_worker():
        time.sleep(1.0)
        first.set_user_attr("status", "duplicate")
        study.tell(first, state=optuna.trial.TrialState.FAIL)
        time.sleep(0.3)  # its next proposal
        second = study.ask()
        second.set_user_attr("worker", "other-host:1")
        second.set_user_attr("config", target.root.default_config.canonical())
        time.sleep(1.0)  # compiling
        second.set_user_attr("status", "ok")
        study.tell(second, 1000.0)

    thread = threading.Thread(target=other_worker)
    thread.start()
    settled = settle(outcome, optuna.storages.RDBStorage(url), timeout_s=60.0)
    thread.join()
    assert settled.trials == 1 and settled.statuses.get("lost", 0) == 0


class _StuckSampler(optuna.samplers.RandomSampler):
    """TPE at its worst in a small space: every draw is the same known config."""

    def sample_independent(self, study, trial, param_name, param_distribution):
        return param_distribution.choices[0]


def test_a_sampler_stuck_on_known_configs_still_spends_the_budget_on_distinct_ones(tmp_path, monkeypatch):
    """TPE re-proposes known configs in a small space; after a few such repeats each further
    one is answered by an unseen point, so the budget is spent on distinct configs instead of
    running out of attempts (a script skeleton stopped at 20 of 30 trials with 160 repeats)."""
    import itertools

    from schedtune.search import _study
    from schedtune.spaces import Skeleton, loop_names

    target, url, evaluator, space, skeletons = _matmul(tmp_path)
    near = skeletons[0]
    # At most eight configs: two choices on three knobs of the neighbourhood skeleton.
    levels = {lvl: {loop: vals[:1] for loop, vals in knobs.items()} for lvl, knobs in near.level_map.items()}
    free = [(lvl, loop, vals) for lvl, knobs in near.level_map.items() for loop, vals in knobs.items() if len(vals) > 1]
    for lvl, loop, vals in free[:3]:
        levels[lvl][loop] = vals[:2]
    small = Skeleton.make("small", near.pipeline, near.loop_peeling[:1], levels, dict(near.ties))
    assert len(small.knobs()) == 3
    loops = loop_names(target.root)
    names = [name for name, _ in small.knobs()]
    legal = set()
    for values in itertools.product(*(choices for _, choices in small.knobs())):
        config = small.config(dict(zip(names, values)), loops)
        if not space.check_config(config, target.root):
            legal.add(config.canonical())
    assert len(legal) >= 4
    monkeypatch.setattr(_study, "make_sampler", lambda kind, seed: _StuckSampler(seed=seed))
    tune_target(
        target,
        space,
        (small,),
        {},
        evaluator,
        storage=url,
        study_name="job:k:small",
        trials=len(legal),
        sampler="tpe",
        seed=0,
    )
    study = optuna.load_study(study_name="job:k:small", storage=url)
    measured = {t.user_attrs["config"] for t in study.trials if t.user_attrs.get("status") not in (None, "duplicate")}
    assert legal <= measured, (len(legal - measured), [t.user_attrs.get("status") for t in study.trials])


def test_no_config_at_least_as_large_as_one_over_the_stack_limit_is_compiled(tmp_path, monkeypatch):
    """A compile failure that grows with the tiles (IREE's 32 KB stack limit) becomes a
    constraint of the study: after the first of its kind, no config with every tile at least
    as large reaches the compiler, in this study or in a later one of the same target."""
    from schedtune.evaluation import Evaluator, TrialResult
    from schedtune.search import at_least

    target, url, evaluator, space, skeletons = _matmul(tmp_path)
    real_compile = Evaluator._compile
    compiled, over = [], []

    def compile_with_a_stack_limit(self, target, config, work):
        compiled.append(config)
        if max(config.tile_map["distribution"]) >= 32:  # stands in for a large tile's stack use
            over.append(config)
            return TrialResult(
                "compile_error", error="error: 'func.func' op exceeded stack allocation limit of 32768 bytes"
            )
        return real_compile(self, target, config, work)

    monkeypatch.setattr(Evaluator, "_compile", compile_with_a_stack_limit)
    for study_name in ("job:k:s:one", "job:k:s:two"):
        tune_target(
            target,
            space,
            skeletons,
            {},
            evaluator,
            storage=url,
            study_name=study_name,
            trials=12,
            sampler="random",
            seed=0,
            history_prefix="job:k:s:",
        )
    assert over, "the stand-in limit was never hit: the test shows nothing"
    for i, config in enumerate(compiled):
        assert not any(at_least(config, failed) for failed in over if compiled.index(failed) < i)
    study = optuna.load_study(study_name="job:k:s:two", storage=url)
    pruned = [
        t for t in study.trials if "failed to compile (stack or vector size limit)" in t.user_attrs.get("error", "")
    ]
    assert all(t.user_attrs["status"] == "constraint" for t in pruned)
