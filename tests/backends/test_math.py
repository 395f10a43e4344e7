"""Math builtins on every device, against numpy in float64.

Tolerances for transcendental functions: fp32 rtol 2e-6 / atol 2e-6 (libm-quality results on
inputs in [-4, 4]; a backend may use its own polynomial, within a few ulps), fp64 1e-12;
fp16/bf16 one rounding of the fp32 result (see _support.TOL). floor, ceil, abs, maximum,
minimum and clamp are exact.
"""

import numpy as np
import pytest

import kaiyuan as ky
import kaiyuan.language as kl

from ._support import NP, TOL, cdiv, erf, rand

BLOCK = 128


FNS = ["exp", "exp2", "log", "log2", "sqrt", "rsqrt", "sigmoid", "sin", "cos", "tanh", "erf", "abs", "floor",
       "ceil", "log1p", "expm1"]
POSITIVE = {"log", "log2", "sqrt", "rsqrt", "log1p"}  # these read p (positive) instead of x


@ky.jit
def apply_fn(x, FN: kl.constexpr):
    if FN == "exp":
        y = kl.exp(x)
    elif FN == "exp2":
        y = kl.exp2(x)
    elif FN == "log":
        y = kl.log(x)
    elif FN == "log2":
        y = kl.log2(x)
    elif FN == "sqrt":
        y = kl.sqrt(x)
    elif FN == "rsqrt":
        y = kl.rsqrt(x)
    elif FN == "sigmoid":
        y = kl.sigmoid(x)
    elif FN == "sin":
        y = kl.sin(x)
    elif FN == "cos":
        y = kl.cos(x)
    elif FN == "tanh":
        y = kl.tanh(x)
    elif FN == "erf":
        y = kl.erf(x)
    elif FN == "abs":
        y = kl.abs(x)
    elif FN == "floor":
        y = kl.floor(x)
    elif FN == "ceil":
        y = kl.ceil(x)
    elif FN == "log1p":
        y = kl.log1p(x)
    elif FN == "expm1":
        y = kl.expm1(x)
    else:
        kl.static_assert(False, "unknown FN")
    return y


@ky.jit
def all_unary_kernel(x_ptr, p_ptr, out_ptr, n, FNS: kl.constexpr, POSITIVE: kl.constexpr, BLOCK: kl.constexpr):
    """out[i*n:(i+1)*n] = FNS[i](x), or FNS[i](p) for the functions in POSITIVE."""
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    mask = offs < n
    x = kl.load(x_ptr + offs, mask=mask, other=1)
    p = kl.load(p_ptr + offs, mask=mask, other=1)
    for i in kl.static_range(len(FNS)):
        arg = p if FNS[i] in POSITIVE else x
        kl.store(out_ptr + i * n + offs, apply_fn(arg, FNS[i]), mask=mask)


REF = {
    "exp": np.exp, "exp2": np.exp2, "log": np.log, "log2": np.log2, "sqrt": np.sqrt,
    "rsqrt": lambda x: 1 / np.sqrt(x), "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "sin": np.sin, "cos": np.cos,
    "tanh": np.tanh, "erf": erf, "abs": np.abs, "floor": np.floor, "ceil": np.ceil, "log1p": np.log1p,
    "expm1": np.expm1,
}
EXACT = {"abs", "floor", "ceil"}
MATH_TOL = {"fp32": (2e-6, 2e-6), "fp64": (1e-12, 1e-12), "fp16": TOL["fp16"], "bf16": TOL["bf16"]}


def _run_all_unary(x, p, fns):
    n = x.size
    out = np.zeros(len(fns) * n, x.dtype)
    all_unary_kernel[(cdiv(n, BLOCK),)](x, p, out, n, FNS=tuple(fns), POSITIVE=tuple(sorted(POSITIVE)), BLOCK=BLOCK)
    return {fn: out[i * n:(i + 1) * n] for i, fn in enumerate(fns)}


@pytest.mark.parametrize("name", ["fp32", "fp64", "fp16", "bf16"])
def test_unary_math(device, name):
    rng = np.random.default_rng(7)
    n = 150  # two blocks, ragged
    x = rand(rng, n, name, -4.0, 4.0)
    x[:4] = np.array([-2.5, -0.0, 2.0, 1.5]).astype(x.dtype)  # exact halves and integers for floor/ceil
    p = rand(rng, n, name, 0.05, 4.0)
    outs = _run_all_unary(x, p, FNS)
    rtol, atol = MATH_TOL[name]
    for fn in FNS:
        arg = (p if fn in POSITIVE else x).astype(np.float64)
        ref = REF[fn](arg).astype(x.dtype)
        if fn in EXACT:
            np.testing.assert_array_equal(outs[fn], ref, err_msg=f"{fn} {name}")
        else:
            np.testing.assert_allclose(outs[fn].astype(np.float64), ref.astype(np.float64), rtol=rtol, atol=atol,
                                       err_msg=f"{fn} {name}")


@pytest.mark.parametrize("name", ["i8", "i32", "i64"])
def test_abs_of_integers(device, name):
    x = np.array([-5, 0, 7, -1, np.iinfo(NP[name]).min + 1], NP[name])
    out = _run_all_unary(x, x, ["abs"])["abs"]
    np.testing.assert_array_equal(out, np.abs(x))


def test_math_of_int_input_is_fp32(device):
    x = np.array([0, 1, 4, 9], np.int32)
    out = np.zeros(4, np.float32)
    unary_kernel_int_to_float[(1,)](x, out, 4)
    np.testing.assert_allclose(out, np.sqrt(x.astype(np.float64)), rtol=1e-6)


@ky.jit
def unary_kernel_int_to_float(x_ptr, out_ptr, n):
    offs = kl.arange(0, 8)
    x = kl.load(x_ptr + offs, mask=offs < n)
    y = kl.sqrt(x)
    kl.static_assert(y.dtype == kl.float32, "integers are converted to fp32 by math builtins")
    kl.store(out_ptr + offs, y, mask=offs < n)


@ky.jit
def binary_math_kernel(x_ptr, y_ptr, z_ptr, out_ptr, n, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    mask = offs < n
    x = kl.load(x_ptr + offs, mask=mask)
    y = kl.load(y_ptr + offs, mask=mask)
    z = kl.load(z_ptr + offs, mask=mask)
    kl.store(out_ptr + 0 * n + offs, kl.maximum(x, y), mask=mask)
    kl.store(out_ptr + 1 * n + offs, kl.minimum(x, y), mask=mask)
    kl.store(out_ptr + 2 * n + offs, kl.clamp(x, -1.0, 1.5), mask=mask)
    kl.store(out_ptr + 3 * n + offs, kl.fma(x, y, z), mask=mask)
    kl.store(out_ptr + 4 * n + offs, kl.pow(kl.abs(x) + 0.5, y), mask=mask)
    kl.store(out_ptr + 5 * n + offs, kl.maximum(x, 0.0), mask=mask)
    kl.store(out_ptr + 6 * n + offs, max(x, y), mask=mask)  # Python's max on tiles → maximum


@pytest.mark.parametrize("name", ["fp32", "fp64", "fp16"])
def test_binary_math(device, name):
    rng = np.random.default_rng(11)
    n = 140
    x, y, z = (rand(rng, n, name, -2.0, 2.0) for _ in range(3))
    out = np.zeros(7 * n, NP[name])
    binary_math_kernel[(cdiv(n, BLOCK),)](x, y, z, out, n, BLOCK=BLOCK)
    r = [out[i * n:(i + 1) * n] for i in range(7)]
    x64, y64, z64 = (a.astype(np.float64) for a in (x, y, z))
    np.testing.assert_array_equal(r[0], np.maximum(x, y))
    np.testing.assert_array_equal(r[1], np.minimum(x, y))
    np.testing.assert_array_equal(r[2], np.clip(x, -1.0, 1.5).astype(x.dtype))
    rtol, atol = MATH_TOL[name]
    # fma may be fused (one rounding) or not (two): allow two roundings of the result type
    np.testing.assert_allclose(r[3].astype(np.float64), (x64 * y64 + z64), rtol=2 * rtol,
                               atol=max(2 * atol, 4 * float(np.finfo(x.dtype).eps)))
    # pow's base is rounded to the tile's type first (|x| + 0.5 is one op in that type)
    base = (np.abs(x) + np.array(0.5, x.dtype)).astype(np.float64)
    np.testing.assert_allclose(r[4].astype(np.float64), np.power(base, y64).astype(x.dtype), rtol=4 * rtol, atol=atol)
    np.testing.assert_array_equal(r[5], np.maximum(x, 0))
    np.testing.assert_array_equal(r[6], np.maximum(x, y))


@pytest.mark.parametrize("name", ["i32", "u8", "i64"])
def test_integer_maximum_minimum_clamp(device, name):
    rng = np.random.default_rng(12)
    x = rand(rng, 64, name)
    y = rand(rng, 64, name)
    out = np.zeros(3 * 64, NP[name])
    int_minmax_kernel[(1,)](x, y, out, 64)
    np.testing.assert_array_equal(out[:64], np.maximum(x, y))  # u8: 200 > 100 (unsigned order)
    np.testing.assert_array_equal(out[64:128], np.minimum(x, y))
    np.testing.assert_array_equal(out[128:], np.clip(x, 10, 100).astype(x.dtype))


@ky.jit
def int_minmax_kernel(x_ptr, y_ptr, out_ptr, n):
    offs = kl.arange(0, 64)
    x = kl.load(x_ptr + offs)
    y = kl.load(y_ptr + offs)
    kl.store(out_ptr + offs, kl.maximum(x, y))
    kl.store(out_ptr + n + offs, kl.minimum(x, y))
    kl.store(out_ptr + 2 * n + offs, kl.clamp(x, 10, 100))


def test_maximum_minimum_propagate_nan(device):
    # the IR contract: arith.maximumf / minimumf propagate NaN
    x = np.array([np.nan, 1.0, 2.0, np.nan], np.float32)
    y = np.array([1.0, np.nan, 3.0, np.nan], np.float32)
    out = np.zeros(7 * 4, np.float32)
    binary_math_kernel[(1,)](x, y, y, out, 4, BLOCK=BLOCK)
    np.testing.assert_array_equal(out[:4], [np.nan, np.nan, 3.0, np.nan])
    np.testing.assert_array_equal(out[4:8], [np.nan, np.nan, 2.0, np.nan])
