"""f16/bf16 element-wise, unsigned integer ops, division by zero, and the accuracy of the
prelude's vectorisable exp/exp2/log/log2 against numpy (max ULP bound)."""

import ml_dtypes
import numpy as np
import pytest

from .helpers import Compiled, module

B = 256


def elementwise_kernel(ops: list[str], ins: list[str], out: str) -> str:
    """out[i] = f(in0[i], in1[i], ...) for i < n; `ops` use %a0, %a1, ... and define %res."""
    lines = ['    %pid = "ky.program_id"() <{axis = 0 : i32}> : () -> i32',
             f'    %r = "ky.make_range"() <{{start = 0 : i32, end = {B} : i32}}> : () -> tensor<{B}xi32>',
             f"    %cb = arith.constant {B} : i32",
             "    %base = arith.muli %pid, %cb : i32",
             f'    %bs = "ky.splat"(%base) : (i32) -> tensor<{B}xi32>',
             f"    %o = arith.addi %bs, %r : tensor<{B}xi32>",
             f'    %ns = "ky.splat"(%n) : (i32) -> tensor<{B}xi32>',
             f"    %m = arith.cmpi slt, %o, %ns : tensor<{B}xi32>"]
    for k, t in enumerate(ins):
        pt = f"tensor<{B}x!ky.ptr<{t}>>"
        lines += [f'    %p{k}s = "ky.splat"(%x{k}) : (!ky.ptr<{t}>) -> {pt}',
                  f'    %p{k} = "ky.addptr"(%p{k}s, %o) : ({pt}, tensor<{B}xi32>) -> {pt}',
                  f'    %a{k} = "ky.load"(%p{k}, %m) <{{operandSegmentSizes = array<i32: 1, 1, 0>}}> : '
                  f"({pt}, tensor<{B}xi1>) -> tensor<{B}x{t}>"]
    lines += [f"    {op}" for op in ops]
    pt = f"tensor<{B}x!ky.ptr<{out}>>"
    lines += [f'    %qs = "ky.splat"(%y) : (!ky.ptr<{out}>) -> {pt}',
              f'    %q = "ky.addptr"(%qs, %o) : ({pt}, tensor<{B}xi32>) -> {pt}',
              f'    "ky.store"(%q, %res, %m) <{{operandSegmentSizes = array<i32: 1, 1, 1>}}> : '
              f"({pt}, tensor<{B}x{out}>, tensor<{B}xi1>) -> ()"]
    params = [f"%x{k}: !ky.ptr<{t}>" for k, t in enumerate(ins)] + [f"%y: !ky.ptr<{out}>", "%n: i32"]
    return module("\n".join(lines), ", ".join(params))


def run(text, *arrays, out_dtype):
    n = len(arrays[0])
    y = np.zeros(n, out_dtype)
    Compiled(text)(((n + B - 1) // B,), *arrays, y, (n, "i32"))
    return y


T = f"tensor<{B}x"


@pytest.mark.parametrize("elem,npt", [("f16", np.float16), ("bf16", ml_dtypes.bfloat16)])
def test_half_elementwise_rounds_every_op(elem, npt):
    ops = [f"%s = arith.addf %a0, %a1 : {T}{elem}>", f"%p = arith.mulf %s, %a1 : {T}{elem}>",
           f"%res = arith.divf %p, %a0 : {T}{elem}>"]
    rng = np.random.default_rng(8)
    a, b = (rng.uniform(0.5, 4, 1000).astype(npt) for _ in range(2))
    y = run(elementwise_kernel(ops, [elem, elem], elem), a, b, out_dtype=npt)
    f = np.float32
    ref = (((a.astype(f) + b.astype(f)).astype(npt).astype(f) * b.astype(f)).astype(npt).astype(f)
           / a.astype(f)).astype(npt)
    np.testing.assert_array_equal(y.astype(f), ref.astype(f))   # RNE after every op: exact


@pytest.mark.parametrize("elem,npt", [("f16", np.float16), ("bf16", ml_dtypes.bfloat16)])
def test_half_conversions_keep_nan_inf(elem, npt):
    ops = [f"%res = arith.truncf %a0 : {T}f32> to {T}{elem}>"]
    x = np.array([1.0, -2.5, np.inf, -np.inf, np.nan, 1e-8, 65504.0, 70000.0, 3.14159, 1 + 2 ** -9] * 30,
                 np.float32)
    y = run(elementwise_kernel(ops, ["f32"], elem), x, out_dtype=npt)
    with np.errstate(over="ignore"):
        ref = x.astype(npt)
    np.testing.assert_array_equal(y.astype(np.float32), ref.astype(np.float32))


def test_unsigned_ops_and_division_by_zero():
    ops = [f"%d = arith.divui %a0, %a1 : {T}i32>", f"%rm = arith.remui %a0, %a1 : {T}i32>",
           f"%sh = arith.shrui %a0, %a1 : {T}i32>", f"%mx = arith.maxui %d, %sh : {T}i32>",
           f"%lt = arith.cmpi ult, %rm, %a1 : {T}i32>", f"%lti = arith.extui %lt : {T}i1> to {T}i32>",
           f"%s1 = arith.addi %mx, %rm : {T}i32>", f"%res = arith.addi %s1, %lti : {T}i32>"]
    rng = np.random.default_rng(9)
    a = rng.integers(0, 2 ** 32, 1000, dtype=np.uint64).astype(np.uint32)
    b = rng.integers(0, 40, 1000).astype(np.uint32)
    b[:10] = 0                                            # division by zero gives 0, never traps
    y = run(elementwise_kernel(ops, ["i32", "i32"], "i32"), a.view(np.int32), b.view(np.int32),
            out_dtype=np.int32).view(np.uint32)
    with np.errstate(all="ignore"):
        d = np.where(b == 0, 0, a // np.maximum(b, 1)).astype(np.uint32)
        r = np.where(b == 0, 0, a % np.maximum(b, 1)).astype(np.uint32)
    sh = np.where(b >= 32, 0, a >> np.minimum(b, 31)).astype(np.uint32)
    ref = (np.maximum(d, sh) + r + (r < b)).astype(np.uint32)
    np.testing.assert_array_equal(y, ref)


def test_signed_division_wraps_and_never_traps():
    ops = [f"%d = arith.divsi %a0, %a1 : {T}i32>", f"%rm = arith.remsi %a0, %a1 : {T}i32>",
           f"%sq = arith.muli %a0, %a0 : {T}i32>", f"%s = arith.addi %d, %rm : {T}i32>",
           f"%res = arith.addi %s, %sq : {T}i32>"]
    a = np.array([7, -7, 7, -7, -2 ** 31, -2 ** 31, 5, 123456789] * 20, np.int32)
    b = np.array([2, 2, -2, -2, -1, 0, 0, -3] * 20, np.int32)
    y = run(elementwise_kernel(ops, ["i32", "i32"], "i32"), a, b, out_dtype=np.int32)
    ref = []
    for x, z in zip(a.tolist(), b.tolist()):
        q = 0 if z == 0 else int(x / z) if not (x == -2 ** 31 and z == -1) else x
        rr = 0 if z in (0, -1) else x - int(x / z) * z
        ref.append((q + rr + x * x + 2 ** 31) % 2 ** 32 - 2 ** 31)   # C truncation, two's complement wrap
    np.testing.assert_array_equal(y, np.array(ref, np.int64).astype(np.int32))


def ulp_error(y: np.ndarray, ref64: np.ndarray) -> float:
    """Distance in f32 ULPs (at the reference) between y and the exact value; inf/nan must match."""
    with np.errstate(over="ignore"):
        r32 = ref64.astype(np.float32)
    special = ~np.isfinite(r32)
    assert np.array_equal(np.isnan(y), np.isnan(r32)), "NaN mismatch"
    assert np.array_equal(y[special & ~np.isnan(r32)], r32[special & ~np.isnan(r32)]), "inf mismatch"
    fin = ~special
    spacing = np.spacing(np.abs(r32[fin])).astype(np.float64)
    spacing = np.maximum(spacing, np.float64(2.0 ** -149))
    return float(np.max(np.abs(y[fin].astype(np.float64) - ref64[fin]) / spacing))


def math_inputs(kind: str) -> np.ndarray:
    rng = np.random.default_rng(10)
    special = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 2.0, 0.5, 88.72, 88.73, -87.3, -103.0, -104.0,
               -110.0, 1e-30, 1.17549435e-38, 1e-45, 3e-39, 3.4e38, 128.0, -126.0, -149.0, -150.0, 127.9]
    if kind == "exp":
        wide = rng.uniform(-105, 90, 200000)
        wide2 = rng.uniform(-155, 130, 100000)
        return np.concatenate([special, wide, wide2, rng.uniform(-1, 1, 50000)]).astype(np.float32)
    bits = rng.integers(0, 0x7F800000, 300000, dtype=np.int64).astype(np.uint32).view(np.float32)  # all positives
    return np.concatenate([special, bits, rng.uniform(0.5, 2, 50000), -rng.uniform(0, 10, 100)]).astype(np.float32)


@pytest.mark.parametrize("op,kind,ref,bound", [
    ("math.exp", "exp", np.exp, 2.0), ("math.exp2", "exp", np.exp2, 2.0),
    ("math.log", "log", np.log, 2.0), ("math.log2", "log", np.log2, 2.0)])
def test_exp_log_accuracy_ulp(op, kind, ref, bound):
    x = math_inputs(kind)
    y = run(elementwise_kernel([f"%res = {op} %a0 : {T}f32>"], ["f32"], "f32"), x, out_dtype=np.float32)
    with np.errstate(all="ignore"):
        exact = ref(x.astype(np.float64))
    err = ulp_error(y, exact)
    assert err <= bound, f"{op}: max error {err:.2f} ulp"


def test_erf_accuracy_ulp():
    """The prelude's vectorisable erf (GELU's hot path) against math.erf in float64: <= 3 ulp
    (measured 2.4 over every 97th positive float and its negation), exact +-1 / NaN / +-0."""
    import math

    rng = np.random.default_rng(11)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30, -1e-45, 0.999999, 1.0, 1.000001, 3.999,
                        4.0, 4.001, -4.5, 10.0], np.float32)
    x = np.concatenate([special, rng.uniform(-5, 5, 200000), rng.uniform(-1, 1, 50000),
                        rng.integers(0, 0x7F800000, 50000, dtype=np.int64).astype(np.uint32).view(np.float32)])
    x = x.astype(np.float32)
    y = run(elementwise_kernel([f"%res = math.erf %a0 : {T}f32>"], ["f32"], "f32"), x, out_dtype=np.float32)
    exact = np.array([math.erf(v) if v == v else np.nan for v in x.astype(np.float64).tolist()])
    assert ulp_error(y, exact) <= 3.0
    np.testing.assert_array_equal(y[:4], [0.0, -0.0, 1.0, -1.0])
    assert np.signbit(y[1])


def test_tanh_accuracy_ulp():
    """The prelude's vectorisable tanh (GELU's tanh form, SiLU-like activations) against tanh in
    float64: <= 2 ulp (measured 1.3 over every 37th positive float and its negation), exact
    +-1 / NaN / +-0, and the seam between its two formulas (|x| = 0.625)."""
    rng = np.random.default_rng(12)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30, -1e-45, 0.62499, 0.625, 0.62501, -0.625,
                        9.0, 44.0, 45.0, -100.0], np.float32)
    x = np.concatenate([special, rng.uniform(-10, 10, 200000), rng.uniform(-1, 1, 50000),
                        rng.integers(0, 0x7F800000, 50000, dtype=np.int64).astype(np.uint32).view(np.float32)])
    x = x.astype(np.float32)
    y = run(elementwise_kernel([f"%res = math.tanh %a0 : {T}f32>"], ["f32"], "f32"), x, out_dtype=np.float32)
    with np.errstate(all="ignore"):
        exact = np.tanh(x.astype(np.float64))
    assert ulp_error(y, exact) <= 2.0
    np.testing.assert_array_equal(y[:4], [0.0, -0.0, 1.0, -1.0])
    assert np.signbit(y[1]) and np.isnan(y[4])


def test_libm_math_and_casts():
    ops = [f"%s = math.sqrt %a0 : {T}f32>", f"%t = math.tanh %a0 : {T}f32>", f"%e = math.erf %a0 : {T}f32>",
           f"%st = arith.addf %s, %t : {T}f32>", f"%res0 = arith.addf %st, %e : {T}f32>",
           f"%i = arith.fptosi %res0 : {T}f32> to {T}i32>", f"%res = arith.sitofp %i : {T}i32> to {T}f64>"]
    x = np.random.default_rng(11).uniform(0, 100, 1000).astype(np.float32)
    y = run(elementwise_kernel(ops, ["f32"], "f64"), x, out_dtype=np.float64)
    import math
    ref = [float(int(np.float32(np.float32(np.sqrt(v) + np.float32(math.tanh(v))) + np.float32(math.erf(v)))))
           for v in x.tolist()]
    np.testing.assert_array_equal(y, ref)
