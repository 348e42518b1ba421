"""Model-level flags decide which ops a spec can tune: batch-1 convs via im2col, matmuls lost to mmt4d."""

from __future__ import annotations

import json
import sqlite3
import statistics

from schedtune import iree
from schedtune.dispatches import Analysis, find_targets, read_configured_executables
from schedtune.export import RACE_TIE
from schedtune.families import SCRIPTED, expected_gain

from .conftest import DATA, run_tune


def _analysis(tmp_path, extra=()):
    tmp_path.mkdir(parents=True)
    flags = iree.target_flags("host", tuple(extra))
    built = iree.compile_model(DATA / "conv_batch1.mlir", tmp_path / "m.vmfb", flags, configs_dir=tmp_path / "cfg")
    assert built.ok, built.error
    inputs = iree.save_inputs(("1x18x18x16xf32", "3x3x16x32xf32"), tmp_path / "in", 0)
    timings = iree.profile_dispatches(tmp_path / "m.vmfb", "main", inputs, tmp_path / "prof", iterations=5)
    return read_configured_executables(tmp_path / "cfg"), timings


def test_batch1_conv_is_known_untunable_and_im2col_makes_it_a_matmul(tmp_path):
    dispatches, timings = _analysis(tmp_path / "default")
    targets, rows = find_targets(dispatches, timings, time_share=1.0, max_targets=8)
    assert targets == []
    assert [r.reason for r in rows if r.family == "conv2d"] == [
        "batch-1 conv: IREE drops a spec's config on it (InsertBatchDimForBatchlessConvPass)"
    ]
    # No IREE-pipeline config reaches it; its time is what only a transform script can tune,
    # weighed for planning with the scripts' own prior.
    assert set(Analysis(dispatches, timings).tunable) == {SCRIPTED}
    assert expected_gain(SCRIPTED) < expected_gain("conv2d")

    dispatches, timings = _analysis(tmp_path / "im2col", ["--iree-global-opt-use-im2col-for-convs"])
    targets, _rows = find_targets(dispatches, timings, time_share=1.0, max_targets=8)
    assert [t.root.family for t in targets] == ["matmul"]
    assert (
        Analysis(dispatches, timings).tunable_share > 0.0
    )  # the matmul; the im2col copy takes the rest (timing-dependent)


def test_batch1_conv_model_is_tuned_under_im2col(tmp_path):
    """The job tunes the im2col matmul instead of giving up, and weighs it against the default end to end."""
    config = tmp_path / "b1.yaml"
    config.write_text(
        f"name: b1\noutput: {tmp_path / 'reports'}\n"
        f"model: {{format: mlir, path: {DATA / 'conv_batch1.mlir'}, inputs: [1x18x18x16xf32, 3x3x16x32xf32]}}\n"
        "budget: {trials_per_dispatch: 3, confirm_rounds: 3}\n"
        # The im2col route alone (the script route is tests/test_transform_dialect.py's).
        "search: {tune_model_flags: true, pipeline_trials: 0, transform_dialect_only_route: false,"
        " named_batch1_convs: false}\n"
    )
    proc = run_tune(config)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "reports" / "b1" / "summary.json").read_text())
    shares = {r["name"]: r.get("tunable_share") for r in summary["flag_candidates"]}
    assert shares["default"] == 0.0 and shares["im2col"] > 0.0
    # The im2col matmul; under im2col + data tiling (tied with it) the same conv is an mmt4d.
    assert "matmul" in [d["op_kind"] for d in summary["dispatches"]]
    assert {d["op_kind"] for d in summary["dispatches"]} <= {"matmul", "mmt4d"}
    row = next(d for d in summary["dispatches"] if d["op_kind"] == "matmul")
    assert row["trials"] == 3
    if row["in_model_ns"] is not None:  # a winner was confirmed: against im2col without the spec, not the
        assert row["in_model_ns"][0] > 0  # default build, where this matmul does not exist (it read 0 ms)
    im2col = ["--iree-global-opt-use-im2col-for-convs"]
    assert summary["tuning_plan"]["builds"][0] == "im2col"  # the only build with tunable time
    export = summary["export"]
    if export["withdrawn"]:  # every contender lost to the default end to end: nothing shipped
        assert summary["tuned_flags"] == [] and summary["end_to_end"]["kept"] == []
        assert export["shipped"] == "none"
    else:  # the fastest contender end to end ships, with its own flags
        contenders = export["contenders"]
        if len(contenders) > 1:  # raced head to head: the race decides, a tie by the speed-ups
            medians = {c["name"]: statistics.median(c["head_to_head_ms"]) for c in contenders}
            contenders = [c for c in contenders if medians[c["name"]] <= min(medians.values()) * (1 + RACE_TIE)]
        best = max(contenders, key=lambda c: c["speedup"])
        assert export["shipped"] == best["name"]
        assert summary["end_to_end"]["speedup"] == best["speedup"]
        assert summary["tuned_flags"] == best["flags"]
        if best["tuned"]:  # a build that tunes the conv: im2col's (alone or with data tiling)
            assert best["flags"][: len(im2col)] == im2col
    report = (tmp_path / "reports" / "b1" / "report.md").read_text()
    assert "Tunable share: default 0%, im2col" in report


def test_tuned_build_slower_end_to_end_is_not_exported(tmp_path, write_job, monkeypatch):
    """If the merged tuned build loses the final A/B, nothing ships and the report says why.

    The slowdown is simulated (the first confirmation's tuned times are scaled): on a real
    machine it happens when per-dispatch gains do not add up, which cannot be provoked on
    demand; everything else here is real.
    """
    import dataclasses

    from schedtune import job as _job_module
    from schedtune.config import load_config

    real_confirm = _job_module.confirm
    calls = []

    def confirm(model, default_flags, winners, *args, **kwargs):
        result = real_confirm(model, default_flags, winners, *args, **kwargs)
        calls.append([t.label for t, _ in winners])
        if len(calls) == 1:  # the tuned build: pretend it kept a winner and lost end to end
            label = winners[0][0].label if winners else "matmul_64x96x128"
            return dataclasses.replace(result, kept=[label], tuned_ms=[t * 1.25 for t in result.default_ms])
        return result

    monkeypatch.setattr(_job_module, "confirm", confirm)
    job = load_config(write_job("withdraw", trials=3))
    result = _job_module.run_job(job, quiet=True)
    assert len(calls) == 2 and calls[1] == []  # re-confirmed with nothing
    summary = result.summary
    assert summary["export"]["withdrawn"]["speedup"] < 1.0
    assert summary["end_to_end"]["kept"] == [] and summary["shipped"] == "none"
    spec = (job.report_dir / "tuning_spec.mlir").read_text()
    assert "@match_op_0" not in spec
    report = (job.report_dir / "report.md").read_text()
    # The headline says what ships, not the withdrawn build's number.
    assert report.splitlines()[2].startswith("**Nothing exported**: the best tuned build")


def _candidate(name, ms, tunable, spread=0.02):
    from schedtune.search import BuildCandidate

    return BuildCandidate(name, (f"--{name}",) if name != "default" else (), ms, spread, tunable)


def test_tuning_plan_weighs_tunable_time_against_a_flag_sets_own_gain():
    """Shares and medians as measured on the suite (2026-11-24)."""
    from schedtune.search import plan_tuning_builds

    # CNN: im2col is fastest alone (1.20x) but turns the convs into matmuls and copies.
    plan = plan_tuning_builds(
        [
            _candidate("default", 13.04, {"conv2d": 0.98}),
            _candidate("im2col", 10.89, {"matmul": 0.76}),
            _candidate("channels-last", 13.15, {"conv2d": 0.98}),
        ],
        "im2col",
    )
    assert plan.builds[0] == "default" and "im2col" not in plan.builds
    # Equally tunable sets: the faster one first (MobileNet: channels-last).
    plan = plan_tuning_builds(
        [_candidate("default", 5.2, {"depthwise": 0.99}), _candidate("channels-last", 4.1, {"depthwise": 0.99})],
        "channels-last",
    )
    assert plan.builds == ("channels-last",)
    # Batch-1 convs: only im2col makes them tunable.
    plan = plan_tuning_builds(
        [_candidate("default", 9.0, {"matmul": 0.11}), _candidate("im2col", 8.0, {"matmul": 0.73})], "default"
    )
    assert plan.builds[0] == "im2col"
    # MLP: mmt4d ukernels are fastest but nothing is tunable under them: never a tuning build.
    plan = plan_tuning_builds(
        [_candidate("default", 4.0, {"matmul": 1.0}), _candidate("data-tiling+ukernels", 3.1, {})],
        "data-tiling+ukernels",
    )
    assert plan.builds == ("default",) and plan.fastest == "data-tiling+ukernels"


def test_tuning_plan_does_not_flip_on_a_noisy_share():
    """The case that shipped 3.8x once and 2.7x the next time: channels-last measured 92% then 98%
    tunable against 97% for data tiling. Close expectations are both tuned, so a wobble in the
    share cannot decide the result; the end-to-end confirmation does."""
    from schedtune.search import plan_tuning_builds

    plans = []
    for share in (0.92, 0.98):
        plans.append(
            plan_tuning_builds(
                [
                    _candidate("data-tiling", 10.0, {"conv2d": 0.97}, spread=0.05),
                    _candidate("channels-last", 10.3, {"conv2d": share}, spread=0.05),
                    _candidate("im2col", 7.6, {"matmul": 0.75}),
                ],
                "im2col",
            )
        )
    assert set(plans[0].builds) == set(plans[1].builds) == {"data-tiling", "channels-last"}
    # A clear difference is not a tie: only the better build is tuned.
    clear = plan_tuning_builds(
        [_candidate("default", 10.0, {"conv2d": 0.98}), _candidate("slow", 14.0, {"conv2d": 0.98})], "default"
    )
    assert clear.builds == ("default",)


def test_more_ties_than_builds_are_broken_by_flags_not_by_noise():
    """Four builds within the noise of each other (the CNN on a busy day): the fewest flags win,
    then the order of spaces/model_flags.yaml, whichever of them measured best this time."""
    from schedtune.search import plan_tuning_builds
    from schedtune.search._flags import spread

    one_bad_round = [5.13, 5.32, 5.13, 4.24, 8.35]
    assert spread(one_bad_round) < 0.1 < (max(one_bad_round) - min(one_bad_round)) / 5.13
    for noise in ((1.0, 1.02, 0.99, 1.01), (1.02, 0.99, 1.01, 1.0)):
        names = ["default", "data-tiling", "channels-last", "aggressive-fusion"]
        plan = plan_tuning_builds(
            [_candidate(n, 10.0 * f, {"conv2d": 0.98}) for n, f in zip(names, noise)], "aggressive-fusion"
        )
        assert plan.builds == ("default", "data-tiling")


def test_a_tied_build_with_nothing_new_to_tune_is_passed_over():
    """Data tiling on a conv net ties with the default (it only turns the classifier's matmul into
    mmt4d): tuning the same convs twice would waste the search; channels-last (NHWC convs) is next."""
    from schedtune.search import BuildCandidate, plan_tuning_builds

    convs, nhwc = frozenset({"conv_a", "conv_b"}), frozenset({"conv_a_nhwc", "conv_b_nhwc"})
    plan = plan_tuning_builds(
        [
            BuildCandidate("default", (), 10.0, 0.02, {"conv2d": 0.95, "matmul": 0.03}, convs | {"fc"}),
            BuildCandidate("data-tiling", ("--dt",), 9.9, 0.02, {"conv2d": 0.96}, convs),
            BuildCandidate("channels-last", ("--cl",), 10.1, 0.02, {"conv2d": 0.95}, nhwc),
        ],
        "data-tiling",
    )
    assert plan.builds == ("default", "channels-last")


def test_one_dominant_op_does_not_push_the_rest_below_the_cut():
    """Attention at 86% of a ViT block left every matmul below a 90% cut taken on the default
    times; cut on the times expected after tuning, the matmuls are tuned too."""
    from schedtune.dispatches import Dispatch, Loop, RootOp
    from schedtune.spec import OpMatcher

    def dispatch(name: str, family: str, bound: int) -> Dispatch:
        matcher = OpMatcher("op", "operands", "f32", "f32", "f32", (), operand_types=((0, "t"),), operand_count=1)
        root = RootOp("op", family, (Loop("m", bound, True),), ("f32",) * 3, matcher, None, f"{family}{bound}")
        return Dispatch(name, root, name)

    shares = {"attention": ("attention", 86.0), "mm_a": ("mmt4d", 4.0), "mm_b": ("mmt4d", 4.0), "mm_c": ("mmt4d", 3.0)}
    shares["copy"] = ("other", 3.0)
    dispatches = {n: dispatch(n, family, i + 1) for i, (n, (family, _)) in enumerate(shares.items())}
    dispatches["copy"] = Dispatch("copy", None, "copy")  # no tunable root op
    timings = {n: iree.DispatchTiming(n, 1, ns * 1e3, ns * 1e3) for n, (_, ns) in shares.items()}
    targets, rows = find_targets(dispatches, timings, time_share=0.9, max_targets=8)
    assert [t.dispatches[0] for t in targets] == ["attention", "mm_a", "mm_b", "mm_c"]
    assert not any(r.reason == "below the time-share cut" for r in rows)
    # The cut still cuts: at 50% of the expected time, the attention alone covers it.
    targets, rows = find_targets(dispatches, timings, time_share=0.5, max_targets=8)
    assert [t.dispatches[0] for t in targets] == ["attention"]
    assert sum(r.reason == "below the time-share cut" for r in rows) == 3


def _confirmed(default_ms: float, tuned_ms: float):
    from schedtune.export import Confirmation

    return Confirmation([default_ms] * 3, [tuned_ms] * 3, 3, ["t"], {}, {}, "spec", 0.0)


def test_builds_confirmed_in_separate_runs_are_ranked_by_their_head_to_head_race():
    """Two tuned builds, each confirmed against the default in a run of its own: the one that
    caught the machine in a slow spell shows the lower speed-up. Raced side by side it is the
    faster one, and the race decides; without a race the speed-ups do."""
    from schedtune.export import Contender, decide_export

    def contenders(race: bool):
        unlucky = Contender("a", ["--a"], _confirmed(125.0, 21.5), True, [16.3, 16.4, 16.2] if race else [])
        lucky = Contender("b", ["--b"], _confirmed(125.0, 16.4), True, [16.8, 16.7, 16.9] if race else [])
        return [unlucky, lucky]

    raced = decide_export(contenders(True), lambda: _confirmed(1.0, 1.0))
    assert raced.shipped.name == "a"
    assert raced.note == "tuned under a (16.30 ms head to head) rather than b 16.80 ms head to head"
    assert raced.to_json()["contenders"][0]["head_to_head_ms"] == [16.3, 16.4, 16.2]
    apart = decide_export(contenders(False), lambda: _confirmed(1.0, 1.0))
    assert apart.shipped.name == "b" and "7.62x" in apart.note
    # Within the race's tie band (1%) the race cannot tell them apart: the speed-ups decide.
    tie = contenders(True)
    tie[1].race_ms = [16.35, 16.4, 16.3]
    assert decide_export(tie, lambda: _confirmed(1.0, 1.0)).shipped.name == "b"


def test_head_to_head_times_every_build_in_the_same_rounds_and_caches_the_race(tmp_path):
    from schedtune.builds import ModelContext
    from schedtune.export import head_to_head
    from schedtune.spec import render_spec
    from schedtune.store import Cache

    inputs = iree.save_inputs(("64x128xf32", "128x96xf32"), tmp_path / "in", 0)
    flags = iree.target_flags("host")
    plain = ModelContext(DATA / "matmul.mlir", "main", inputs, flags, tmp_path / "work")
    tiled = ModelContext(
        DATA / "matmul.mlir", "main", inputs, [*flags, "--iree-global-opt-data-tiling"], tmp_path / "work"
    )
    cache = Cache(f"sqlite:///{tmp_path / 'c.db'}")
    builds = [(plain, ""), (tiled, render_spec([]))]
    ms = head_to_head(builds, cache, tmp_path / "race", rounds=2)
    assert ms is not None and len(ms) == 2
    assert all(len(times) == 2 and all(t > 0 for t in times) for times in ms)
    assert sorted(p.name for p in (tmp_path / "race").glob("*.vmfb")) == ["contender_0.vmfb", "contender_1.vmfb"]
    compiles = iree.compiles_so_far()
    assert head_to_head(builds, cache, tmp_path / "race", rounds=2) == ms  # a nightly re-run: no build, no run
    assert iree.compiles_so_far() == compiles
    # A build that no longer compiles leaves nothing to race.
    broken = ModelContext(DATA / "matmul.mlir", "main", inputs, [*flags, "--iree-no-such-flag"], tmp_path / "work")
    assert head_to_head([(plain, ""), (broken, "")], cache, tmp_path / "race2", rounds=2) is None


def test_report_says_whether_the_race_or_a_tie_decided():
    from schedtune.export import Contender, decide_export
    from schedtune.report._write import _race_text

    def decided(b_ms):
        a = Contender("a", ["--a"], _confirmed(125.0, 21.5), True, [16.3, 16.4, 16.2])
        b = Contender("b", ["--b"], _confirmed(125.0, 16.4), True, b_ms)
        return decide_export([a, b], lambda: _confirmed(1.0, 1.0)).to_json()

    apart = decided([16.8, 16.7, 16.9])
    assert apart["race_tie"] == []
    assert _race_text(apart).endswith("so the race decides.") and "a 16.30 ms, b 16.80 ms" in _race_text(apart)
    tie = decided([16.35, 16.4, 16.3])
    assert tie["race_tie"] == ["a", "b"]
    assert _race_text(tie).endswith("a and b tie (within 1%), so their own speed-ups above decide.")
    assert _race_text({"contenders": [{"name": "a", "head_to_head_ms": []}]}) == ""


def test_fixed_flag_sets_follow_the_models_op_families():
    """A set is offered for one of `when_any`'s families, all of `when_all`'s and none of
    `unless_any`'s: the layout rewrites go to the nets that have the ops they rewrite."""
    from schedtune.spaces import flag_candidates

    def names(*families: str) -> set[str]:
        return {c.name for c in flag_candidates(set(families))[0]}

    assert "channels-last+pooling" not in names("conv2d")
    assert {"channels-last+pooling", "im2col"} <= names("conv2d", "pooling")
    assert "channels-last+depthwise+pooling" not in names("conv2d", "pooling")
    both = names("conv2d", "depthwise", "pooling")
    assert {"channels-last+depthwise", "channels-last+depthwise+pooling"} <= both
    assert not {"channels-last+pooling", "im2col"} & both


def test_flag_stage_past_its_time_builds_only_the_default_and_caches_nothing(tmp_path):
    """On a model whose every build takes minutes, the flag stage stops building candidates at
    its deadline (the dispatch search keeps its share); an incomplete decision is not cached,
    so the next job measures the candidates it skipped."""
    import time

    from schedtune.builds import ModelContext
    from schedtune.search import choose_flags
    from schedtune.spaces import FlagCandidate
    from schedtune.store import Cache

    inputs = iree.save_inputs(("1x18x18x16xf32", "3x3x16x32xf32"), tmp_path / "in", 0)
    model = ModelContext(DATA / "conv_batch1.mlir", "main", inputs, iree.target_flags("host"), tmp_path / "w")
    cache = Cache(f"sqlite:///{tmp_path / 's.db'}")
    candidates = [FlagCandidate("default", ()), FlagCandidate("im2col", ("--iree-global-opt-use-im2col-for-convs",))]
    reference = model.reference_outputs()

    late = choose_flags(model, candidates, reference, cache, rounds=2, deadline=time.monotonic() - 1)
    rows = {r["name"]: r for r in late.rows}
    assert late.chosen.name == "default"
    assert rows["im2col"]["status"] == "skipped" and "median_ms" not in rows["im2col"]
    assert rows["default"]["status"] == "ok" and len(rows["default"]["rounds_ms"]) == 2

    again = choose_flags(model, candidates, reference, cache, rounds=2)
    assert {r["name"]: r["status"] for r in again.rows} == {"default": "ok", "im2col": "ok"}

    # Whoever can write the shared storage must not choose what is compiled: the stored
    # decision's flags are today's candidates', whatever the storage holds.
    planted = {
        "chosen": "im2col",
        "rows": [{**r, "flags": ["--iree-hal-dump-executable-files-to=/tmp/x"]} for r in again.rows],
    }
    with sqlite3.connect(tmp_path / "s.db") as db:
        assert db.execute(
            "UPDATE schedtune_cache SET payload = ? WHERE kind = 'flags'", (json.dumps(planted),)
        ).rowcount
    stored = choose_flags(model, candidates, reference, cache, rounds=2)
    assert stored.chosen.name == "im2col"
    assert {r["name"]: r["flags"] for r in stored.rows} == {c.name: list(c.flags) for c in candidates}


def test_a_build_out_of_reach_is_one_no_tuning_can_bring_level():
    from schedtune.families import max_expected_gain
    from schedtune.search import within_reach

    gain = max_expected_gain()
    assert gain >= expected_gain("conv2d") and gain >= expected_gain("matmul")
    assert within_reach(100.0, 100.0)
    assert within_reach(gain * 100.0, 100.0)  # all of it tunable at the best prior: a tie
    assert not within_reach(3 * gain * 100.0, 100.0)  # ResNet-50's default next to im2col on AVX2
