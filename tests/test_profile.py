"""Per-dispatch times inside the model (per model call), and the time a limit leaves each target."""

from __future__ import annotations

from schedtune import iree

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


def test_a_time_limit_is_shared_between_the_targets_left():
    """Each target gets an equal share of the time left, so the last targets are not starved;
    what a target leaves unused goes to the ones after it."""
    import time

    from schedtune.search import share_of_time_left

    now = time.monotonic()
    assert share_of_time_left(None, 3) is None
    first = share_of_time_left(now + 300, 3)
    assert abs(first - (now + 100)) < 1
    last = share_of_time_left(now + 300, 1)
    assert abs(last - (now + 300)) < 1
    assert share_of_time_left(now - 5, 2) <= time.monotonic()  # past the limit: none left


def test_report_gives_each_target_its_gflops_beside_the_yardstick():
    from schedtune.families import op_flops
    from schedtune.report._summary import yardstick
    from schedtune.report._write import _gflops, _yardstick_lines

    flops = op_flops("conv2d", [1, 7, 7, 512, 3, 3, 512])
    assert flops == 2 * 7 * 7 * 512 * 9 * 512
    assert op_flops("pooling", [1, 56, 56, 64, 3, 3]) is None  # memory-bound: no GFLOP/s
    assert op_flops("attention", [1, 12, 128, 64, 64, 128]) is None
    # The confirmation's own profile counts differently: only its ratio is taken.
    row = {"flops": 3 * flops, "default_ns": 6e6, "in_model_ns": [12e6, 8e6], "status": "tuned"}
    assert _gflops(row) == f"{3 * flops / 6e6:.0f} -> {3 * flops / 4e6:.0f}"
    assert _gflops(dict(row, status="default kept")) == f"{3 * flops / 6e6:.0f}"
    measured = yardstick(size=256, repeats=2)
    assert measured["gflops"] > 0
    assert "256^3" in _yardstick_lines(measured)[1]
