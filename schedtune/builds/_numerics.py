"""Do a candidate's outputs agree with IREE's default build? Every output, every element.

Tiling and vectorisation reorder sums, so floats may differ by rounding; anything beyond that
is a miscompile. Each element may differ by `atol + rtol * |ref|`, where `atol` scales with
the output's own magnitude (a tolerance fixed at 1e-3 would let an output of ~1e-4 be all
zeros), and both depend on the element type.
"""

from __future__ import annotations

import numpy as np

# dtype kind -> (rtol, atol as a fraction of the output's largest magnitude)
_FLOAT32 = (1e-3, 1e-4)
_FLOAT16 = (1e-2, 1e-2)
_EXACT = (0.0, 0.0)


def tolerance(dtype: np.dtype) -> tuple[float, float]:
    """(rtol, relative atol) for outputs of this element type."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return _FLOAT16 if dtype.itemsize <= 2 else _FLOAT32
    if dtype.kind == "c":
        return _FLOAT32
    return _EXACT  # integers and booleans must match exactly


def outputs_match(outputs: list[np.ndarray], reference: list[np.ndarray]) -> tuple[bool, float]:
    """(every output agrees, worst error relative to its output's magnitude).

    Non-finite values must sit where the reference has the same value (inf) or a NaN.
    """
    if len(outputs) != len(reference):
        return False, float("inf")
    worst = 0.0
    ok = True
    for out, ref in zip(outputs, reference):
        if out.shape != ref.shape or out.dtype != ref.dtype:
            return False, float("inf")
        if not ref.size:
            continue
        rtol, atol_rel = tolerance(ref.dtype)
        got, want = out.astype(np.float64), ref.astype(np.float64)
        finite = np.isfinite(want)
        same_special = (got == want) | (np.isnan(got) & np.isnan(want))
        if not np.all(same_special[~finite]):
            ok = False
            worst = float("inf")
            continue
        got, want = got[finite], want[finite]
        if not got.size:
            continue
        if not np.all(np.isfinite(got)):
            ok = False
            worst = float("inf")
            continue
        scale = float(np.max(np.abs(want)))
        # The smallest normal float keeps an all-zero reference from demanding bit equality
        # of float noise; integers (atol 0) stay exact.
        atol = atol_rel * scale + (np.finfo(np.float32).tiny if rtol else 0.0)
        diff = np.abs(got - want)
        worst = max(worst, float(np.max(diff)) / (scale or 1.0))
        if np.any(diff > atol + rtol * np.abs(want)):
            ok = False
    return ok, worst


def all_sets_match(outputs: list[list[np.ndarray]], reference: list[list[np.ndarray]]) -> tuple[bool, float]:
    """`outputs_match` over every input set (one list of outputs per set)."""
    if len(outputs) != len(reference):
        return False, float("inf")
    ok, worst = True, 0.0
    for got, want in zip(outputs, reference):
        good, err = outputs_match(got, want)
        ok &= good
        worst = max(worst, err)
    return ok, worst
