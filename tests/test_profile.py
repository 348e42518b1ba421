"""Per-dispatch times inside the model: per model call, however often a dispatch runs in one."""

from __future__ import annotations

from tuner import iree

from .conftest import DATA


def test_a_dispatch_run_three_times_per_call_leaves_the_others_their_time():
    """Per call, not per the busiest dispatch's count: a copy run three times in each of 20
    calls must not cut a conv's time to a third (issue 23: shares undercounted the hot convs)."""
    timings = {
        "conv": iree.DispatchTiming("conv", 20, 1000.0, 900.0, calls=20),
        "copy": iree.DispatchTiming("copy", 60, 10.0, 9.0, calls=20),
    }
    assert iree.per_call_ns(timings) == {"conv": 1000.0, "copy": 30.0}
    # A profile recorded before the call count was kept reads as before.
    old = {n: iree.DispatchTiming(t.name, t.count, t.avg_ns, t.min_ns) for n, t in timings.items()}
    assert iree.per_call_ns(old) == {"conv": 1000.0 / 3, "copy": 10.0}


def test_profile_records_the_model_calls(tmp_path):
    built = iree.compile_model(DATA / "matmul.mlir", tmp_path / "m.vmfb", iree.target_flags("host"))
    assert built.ok, built.error
    inputs = iree.save_inputs(("64x128xf32", "128x96xf32"), tmp_path / "in", 0)
    timings = iree.profile_dispatches(built.vmfb, "main", inputs, tmp_path / "p", iterations=7)
    assert timings and all(t.calls == 7 and t.count == 7 for t in timings.values())
