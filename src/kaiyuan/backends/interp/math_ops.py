"""`math` ops: numpy ufuncs, evaluated in f32 for f16/bf16 and rounded to the result type.

f32 results use numpy's float32 kernels (within a few ulp of correctly rounded); `erf` and `fma`
go through f64. This is a reference for meaning, not for last-bit accuracy.
"""

from __future__ import annotations

import math

import numpy as np

from .arith_ops import _elementwise, in_compute_dtype
from .registry import lowers
from .irtypes import F64, np_dtype

_erf64 = np.vectorize(math.erf, otypes=[np.float64])


def erf(x):
    """Vectorised math.erf (correctly rounded in f64), rounded to x's dtype."""
    return _erf64(np.asarray(x, dtype=F64)).astype(np.result_type(x))[()]


def fma(a, b, c):
    """a*b+c: the product of two f32 is exact in f64, so this is one rounding away from fused."""
    dt = np.result_type(a)
    return (a.astype(F64) * b.astype(F64) + c.astype(F64)).astype(dt)


def rsqrt(x):
    return np.reciprocal(np.sqrt(x))


_UNARY = {
    "math.exp": np.exp, "math.exp2": np.exp2, "math.log": np.log, "math.log2": np.log2, "math.log10": np.log10,
    "math.sqrt": np.sqrt, "math.rsqrt": rsqrt, "math.sin": np.sin, "math.cos": np.cos, "math.tan": np.tan,
    "math.tanh": np.tanh, "math.sinh": np.sinh, "math.cosh": np.cosh, "math.asin": np.arcsin,
    "math.acos": np.arccos, "math.atan": np.arctan, "math.absf": np.abs, "math.floor": np.floor,
    "math.ceil": np.ceil, "math.trunc": np.trunc, "math.roundeven": np.rint, "math.erf": erf,
    "math.log1p": np.log1p, "math.expm1": np.expm1, "math.cbrt": np.cbrt,
}
_BINARY = {"math.powf": np.power, "math.atan2": np.arctan2, "math.copysign": np.copysign}


@lowers(*_UNARY, *_BINARY)
def float_math(op, cx):
    fn = _UNARY.get(op.name) or _BINARY[op.name]
    return _elementwise(op, cx, in_compute_dtype(fn, np_dtype(op.results[0].type)))


@lowers("math.fma")
def fma_op(op, cx):
    return _elementwise(op, cx, fma)


@lowers("math.absi")
def absi(op, cx):
    return _elementwise(op, cx, np.abs)  # wraps: abs(INT_MIN) == INT_MIN
