"""Model-level flags decide which ops a spec can tune: batch-1 convs via im2col, matmuls lost to mmt4d."""
from __future__ import annotations

import json

from tuner import iree
from tuner.dispatches import find_targets, read_configured_executables, tunable_share

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
        "batch-1 conv: IREE drops a spec's config on it (InsertBatchDimForBatchlessConvPass)"]
    assert tunable_share(dispatches, timings) == 0.0

    dispatches, timings = _analysis(tmp_path / "im2col", ["--iree-global-opt-use-im2col-for-convs"])
    targets, _rows = find_targets(dispatches, timings, time_share=1.0, max_targets=8)
    assert [t.root.family for t in targets] == ["matmul"]
    assert tunable_share(dispatches, timings) > 0.0  # the matmul; the im2col copy takes the rest (timing-dependent)


def test_batch1_conv_model_is_tuned_under_im2col(tmp_path):
    """The job tunes the im2col matmul instead of giving up, and weighs it against the default end to end."""
    config = tmp_path / "b1.yaml"
    config.write_text(
        f"name: b1\noutput: {tmp_path / 'reports'}\n"
        f"model: {{format: mlir, path: {DATA / 'conv_batch1.mlir'}, inputs: [1x18x18x16xf32, 3x3x16x32xf32]}}\n"
        "budget: {trials_per_dispatch: 3, confirm_rounds: 3}\n"
        "search: {tune_model_flags: true}\n"
    )
    proc = run_tune(config)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "reports" / "b1" / "summary.json").read_text())
    shares = {r["name"]: r.get("tunable_share") for r in summary["flag_candidates"]}
    assert shares["default"] == 0.0 and shares["im2col"] > 0.0
    assert [d["op_kind"] for d in summary["dispatches"]] == ["matmul"]
    row = summary["dispatches"][0]
    assert row["trials"] == 3
    if row["in_model_ns"] is not None:  # a winner was confirmed: against im2col without the spec, not the
        assert row["in_model_ns"][0] > 0  # default build, where this matmul does not exist (it read 0 ms)
    im2col = ["--iree-global-opt-use-im2col-for-convs"]
    arbitration = summary["flag_arbitration"]
    if summary["withdrawn"]:  # im2col + tuned matmul lost to the default end to end: nothing shipped
        assert summary["tuned_flags"] == [] and summary["end_to_end"]["kept"] == []
        assert summary["withdrawn"]["flags"] in (im2col, (arbitration or {}).get("flags"))
    elif arbitration is None:  # default or im2col was the fastest flag set, and the tuned build is not slower
        assert summary["tuned_flags"] == im2col and summary["end_to_end"]["speedup"] >= 1.0
    else:  # weighed end to end against a faster flag set alone: exported whichever won, and said which
        assert arbitration["tuning_flags"] == im2col
        faster = max(arbitration["flags_alone_speedup"], arbitration["tuned_dispatches_speedup"])
        assert summary["end_to_end"]["speedup"] == faster
        expected = arbitration["flags"] if arbitration["chosen"] == "flags alone" else im2col
        assert summary["tuned_flags"] == expected
    report = (tmp_path / "reports" / "b1" / "report.md").read_text()
    assert "Tunable share: default 0%, im2col" in report


def test_tuned_build_slower_end_to_end_is_not_exported(tmp_path, write_job, monkeypatch):
    """If the merged tuned build loses the final A/B, nothing ships and the report says why.

    The slowdown is simulated (the first confirmation's tuned times are scaled): on a real
    machine it happens when per-dispatch gains do not add up, which cannot be provoked on
    demand; everything else here is real.
    """
    import dataclasses

    from tuner import _pipeline
    from tuner.config import load_config

    real_confirm = _pipeline.confirm
    calls = []

    def confirm(model, default_flags, winners, *args, **kwargs):
        result = real_confirm(model, default_flags, winners, *args, **kwargs)
        calls.append([t.label for t, _ in winners])
        if len(calls) == 1:  # the tuned build: pretend it kept a winner and lost end to end
            label = winners[0][0].label if winners else "matmul_64x96x128"
            return dataclasses.replace(result, kept=[label], tuned_ms=[t * 1.25 for t in result.default_ms])
        return result

    monkeypatch.setattr(_pipeline, "confirm", confirm)
    job = load_config(write_job("withdraw", trials=3))
    result = _pipeline.run_job(job, quiet=True)
    assert len(calls) == 2 and calls[1] == []  # re-confirmed with nothing
    summary = result.summary
    assert summary["withdrawn"]["speedup"] < 1.0
    assert summary["end_to_end"]["kept"] == []
    spec = (job.report_dir / "tuning_spec.mlir").read_text()
    assert "@match_op_0" not in spec
    assert "Nothing exported: the tuned build" in (job.report_dir / "report.md").read_text()


def test_tuning_build_prefers_tunable_time_over_a_flag_sets_own_gain():
    """Shares and medians as measured on the suite (2026-11-24)."""
    from tuner.search import tuning_build

    # CNN: im2col is fastest alone (1.20x) but leaves 22 points less time tunable.
    assert tuning_build({"default": 0.98, "im2col": 0.76, "channels-last": 0.98},
                        {"default": 13.04, "im2col": 10.89, "channels-last": 13.15}, "im2col") == "default"
    # Equally tunable sets: the fastest of them (MobileNet: channels-last).
    assert tuning_build({"default": 0.99, "channels-last": 0.99}, {"default": 5.2, "channels-last": 4.1},
                        "channels-last") == "channels-last"
    # Batch-1 convs: only im2col makes them tunable.
    assert tuning_build({"default": 0.11, "im2col": 0.73}, {"default": 9.0, "im2col": 8.0}, "default") == "im2col"
    # MLP: mmt4d ukernels are fastest but nothing is tunable under them.
    assert tuning_build({"default": 1.0, "data-tiling+ukernels": 0.0}, {"default": 4.0, "data-tiling+ukernels": 3.1},
                        "data-tiling+ukernels") == "default"
