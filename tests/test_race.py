"""The search's best few configs race IREE's default in interleaved rounds before one is picked."""

from __future__ import annotations

import dataclasses

from schedtune import iree
from schedtune.proposers import HeuristicProposer, ProposalRequest, default_values
from schedtune.search import TargetOutcome, race, tune_target
from schedtune.spaces import load_space

from .conftest import matmul_config, matmul_setup


def test_race_reranks_with_medians_and_is_cached(tmp_path):
    target, url, evaluator = matmul_setup(tmp_path)
    space = load_space("matmul").admitting(target.root)
    request = ProposalRequest(target, space, iree.host_cpu_features(), None)
    skeletons = HeuristicProposer().propose(request).skeletons
    outcome = tune_target(
        target,
        space,
        skeletons,
        {skeletons[0].name: default_values(skeletons[0], request)},
        evaluator,
        storage=url,
        study_name="race",
        trials=6,
        sampler="random",
        seed=0,
    )
    assert outcome.baseline_ns  # IREE's default was trial 0
    # The luckiest sample of a noisy search: a legal config that claimed 1 ns.
    claimed = dataclasses.replace(
        outcome, ranked=((matmul_config(), 1.0), *outcome.ranked), best_config=matmul_config(), best_ns=1.0
    )
    raced = race(claimed, evaluator, top=2, rounds=3)
    default = target.root.default_config
    configs = [c for c, _ in raced.ranked]
    assert default in configs and matmul_config() in configs and len(configs) <= 3
    # Re-timed: the 1 ns claim is gone, every time is a real median, the baseline is the default's.
    times = {c.canonical(): ns for c, ns in raced.ranked}
    assert all(ns > 100.0 for ns in times.values())
    assert raced.baseline_ns == times[default.canonical()]
    assert raced.best_config == raced.ranked[0][0] and raced.best_ns == min(times.values())
    before = iree.compiles_so_far()
    again = race(claimed, evaluator, top=2, rounds=3)
    assert iree.compiles_so_far() == before and again.ranked == raced.ranked  # from the cache


def test_nothing_to_race_when_the_search_found_nothing(tmp_path):
    target, _, evaluator = matmul_setup(tmp_path)
    outcome = TargetOutcome(target, "s", 1, {"ok": 1}, target.root.default_config, 5.0, 5.0, ())
    assert race(outcome, evaluator) is outcome
