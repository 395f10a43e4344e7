"""Shared helpers of the conformance suite: random inputs per dtype and documented tolerances.

Tolerances (relative, absolute), for results of ONE correctly rounded operation unless a test
says otherwise:
  fp16  2e-3 / 1e-3   (fp16 has an 11-bit significand: half an ulp is 4.9e-4 relative)
  bf16  1.6e-2 / 1e-2 (8-bit significand: half an ulp is 3.9e-3 relative; 4 ulps of slack)
  fp32  1e-6 / 1e-6   (backends may fuse or reorder; a few ulps)
  fp64  1e-12 / 1e-12
  integers and bool: exact (two's complement wrap-around on overflow, as numpy does).
Transcendental functions (exp, sin, erf, ...) get looser fp32 bounds in tests/backends/test_math.py.
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np

NP = {
    "fp16": np.dtype(np.float16), "bf16": np.dtype(ml_dtypes.bfloat16), "fp32": np.dtype(np.float32),
    "fp64": np.dtype(np.float64), "i8": np.dtype(np.int8), "i16": np.dtype(np.int16), "i32": np.dtype(np.int32),
    "i64": np.dtype(np.int64), "u8": np.dtype(np.uint8), "i1": np.dtype(np.bool_),
}
FLOATS = ["fp16", "bf16", "fp32", "fp64"]
INTS = ["i8", "i16", "i32", "i64", "u8"]
ALL = FLOATS + INTS + ["i1"]

TOL = {"fp16": (2e-3, 1e-3), "bf16": (1.6e-2, 1e-2), "fp32": (1e-6, 1e-6), "fp64": (1e-12, 1e-12)}


def rand(rng: np.random.Generator, shape, name: str, low=None, high=None) -> np.ndarray:
    """Random values of dtype `name`; floats in [low, high) (default [-4, 4)), ints over a range
    that exercises wrap-around for the narrow types."""
    t = NP[name]
    if name == "i1":
        return rng.random(shape) < 0.5
    if name in FLOATS:
        lo, hi = (-4.0 if low is None else low), (4.0 if high is None else high)
        return rng.uniform(lo, hi, shape).astype(t)
    info = np.iinfo(t)
    lo = info.min if low is None else low
    hi = info.max if high is None else high
    lo, hi = max(lo, -(2**40)), min(hi, 2**40)  # i64: keep products exact-checkable via numpy wrap
    return rng.integers(lo, hi, shape, endpoint=True).astype(t)


def assert_close(out, ref, name: str, rtol=None, atol=None, err_msg=""):
    out, ref = np.asarray(out), np.asarray(ref)
    assert out.shape == ref.shape, (out.shape, ref.shape)
    if name in TOL:
        r, a = TOL[name]
        np.testing.assert_allclose(out.astype(np.float64), ref.astype(NP[name]).astype(np.float64),
                                   rtol=r if rtol is None else rtol, atol=a if atol is None else atol,
                                   equal_nan=True, err_msg=err_msg)
    else:
        np.testing.assert_array_equal(out, ref.astype(NP[name]), err_msg=err_msg)


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def c_div(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Integer division truncating toward zero (C, and the IR's divsi), in x's dtype."""
    q = np.abs(x.astype(np.int64)) // np.abs(y.astype(np.int64))
    return (np.sign(x.astype(np.int64)) * np.sign(y.astype(np.int64)) * q).astype(x.dtype)


def c_rem(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Remainder with the sign of the dividend (C, and the IR's remsi), in x's dtype."""
    return (x.astype(np.int64) - c_div(x, y).astype(np.int64) * y.astype(np.int64)).astype(x.dtype)


erf = np.vectorize(math.erf, otypes=[np.float64])
