"""Do a candidate's outputs agree with IREE's default build? Every output, every element.

The tolerances, in one place, and why:
- Integers and booleans match exactly, compared in their own type (an int64 above 2^53 is not
  rounded through float64).
- Floats: tiling and vectorisation reorder sums, so elements may differ by rounding; anything
  beyond that is a miscompile. Each element may differ by `atol + rtol * |ref|`, with `atol`
  a fraction of the output's root-mean-square magnitude: a tolerance fixed at 1e-3 would let
  an output of ~1e-4 be all zeros, and one taken from the largest element would let a single
  large value hide sign flips everywhere else. On top, the whole tensor's relative L2 error
  is bounded. Half-precision types (f16, bf16) get looser bounds than f32.
- Non-finite values must sit where the reference has the same value (inf) or a NaN.
- A build that computes in a narrower type on purpose (`precision` in the job file) is held
  to the user's budget instead: each output's relative L2 error at most `budget`.
"""

from __future__ import annotations

import numpy as np

# (rtol, atol as a fraction of the output's RMS, bound on the relative L2 error)
_FLOAT32 = (1e-3, 1e-4, 1e-4)
_HALF = (1e-2, 1e-2, 1e-2)
_EXACT = (0.0, 0.0, 0.0)


def tolerance(dtype: np.dtype) -> tuple[float, float, float]:
    """(rtol, atol relative to the output's RMS, relative L2 bound) for this element type."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iub":
        return _EXACT
    return _HALF if dtype.itemsize <= 2 else _FLOAT32


def outputs_match(outputs: list[np.ndarray], reference: list[np.ndarray]) -> tuple[bool, float]:
    """(every output agrees, worst element error relative to its output's RMS; integers: the
    largest absolute difference)."""
    if len(outputs) != len(reference):
        return False, float("inf")
    worst = 0.0
    ok = True
    for out, ref in zip(outputs, reference):
        if out.shape != ref.shape or out.dtype != ref.dtype:
            return False, float("inf")
        if not ref.size:
            continue
        if np.dtype(ref.dtype).kind in "iub":
            if not np.array_equal(out, ref):
                ok = False
                worst = max(worst, _integer_error(out, ref))
            continue
        good, err = _floats_match(out.astype(np.float64), ref.astype(np.float64), tolerance(ref.dtype))
        ok &= good
        worst = max(worst, err)
    return ok, worst


def _integer_error(out: np.ndarray, ref: np.ndarray) -> float:
    if out.dtype.kind == "b":
        return 1.0
    # Differences taken in Python integers: no overflow, no rounding.
    differs = out != ref
    return float(max(abs(int(a) - int(b)) for a, b in zip(out[differs].ravel(), ref[differs].ravel())))


def _floats_match(got: np.ndarray, want: np.ndarray, tol: tuple[float, float, float]) -> tuple[bool, float]:
    rtol, atol_rel, l2_bound = tol
    finite = np.isfinite(want)
    same_special = (got == want) | (np.isnan(got) & np.isnan(want))
    if not np.all(same_special[~finite]):
        return False, float("inf")
    got, want = got[finite], want[finite]
    if not got.size:
        return True, 0.0
    if not np.all(np.isfinite(got)):
        return False, float("inf")
    rms = float(np.sqrt(np.mean(want * want)))
    # The smallest normal float keeps an all-zero reference from demanding bit equality of noise.
    atol = atol_rel * rms + np.finfo(np.float32).tiny
    diff = np.abs(got - want)
    worst = float(np.max(diff)) / (rms or 1.0)
    if np.any(diff > atol + rtol * np.abs(want)):
        return False, worst
    norm = float(np.linalg.norm(want))
    if norm and float(np.linalg.norm(got - want)) > l2_bound * norm:
        return False, worst
    return True, worst


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


def within_budget(
    outputs: list[list[np.ndarray]], reference: list[list[np.ndarray]], budget: float
) -> tuple[bool, float]:
    """Every output on every input set within `budget` relative L2 error of the reference, with
    non-finite values where the reference has them. Returns (ok, the worst relative L2 error)."""
    if len(outputs) != len(reference) or any(len(g) != len(w) for g, w in zip(outputs, reference)):
        return False, float("inf")
    worst = 0.0
    for got_set, want_set in zip(outputs, reference):
        for got, want in zip(got_set, want_set):
            if got.shape != want.shape:
                return False, float("inf")
            got, want = got.astype(np.float64), want.astype(np.float64)
            finite = np.isfinite(want)
            if not np.array_equal(np.isfinite(got), finite):
                return False, float("inf")
            norm = float(np.linalg.norm(want[finite]))
            error = float(np.linalg.norm(got[finite] - want[finite])) / (norm or 1.0)
            worst = max(worst, error)
    return worst <= budget, worst
