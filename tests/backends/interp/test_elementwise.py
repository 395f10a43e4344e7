"""Element-wise arith/math on tiles and scalars, masked loads/stores, narrow floats, unsigned ops."""

import ml_dtypes
import numpy as np
import pytest

from kaiyuan.runtime.errors import DeviceAssertError

from .helpers import module, run

VECTOR_ADD = module("""
    %pid = "ky.program_id"() <{axis = 0 : i32}> : () -> i32 loc("k.py":5:10)
    %r = "ky.make_range"() <{start = 0 : i32, end = 128 : i32}> : () -> tensor<128xi32>
    %c = arith.constant 128 : i32
    %b = arith.muli %pid, %c : i32
    %bs = "ky.splat"(%b) : (i32) -> tensor<128xi32>
    %o = arith.addi %bs, %r : tensor<128xi32>
    %ns = "ky.splat"(%n) : (i32) -> tensor<128xi32>
    %m = arith.cmpi slt, %o, %ns : tensor<128xi32>
    %xp = "ky.splat"(%x) : (!ky.ptr<f32>) -> tensor<128x!ky.ptr<f32>>
    %xs = "ky.addptr"(%xp, %o) : (tensor<128x!ky.ptr<f32>>, tensor<128xi32>) -> tensor<128x!ky.ptr<f32>>
    %xv = "ky.load"(%xs, %m) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : (tensor<128x!ky.ptr<f32>>, tensor<128xi1>) -> tensor<128xf32> loc("k.py":7:3)
    %yp = "ky.splat"(%y) : (!ky.ptr<f32>) -> tensor<128x!ky.ptr<f32>>
    %ys = "ky.addptr"(%yp, %o) : (tensor<128x!ky.ptr<f32>>, tensor<128xi32>) -> tensor<128x!ky.ptr<f32>>
    %yv = "ky.load"(%ys, %m) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : (tensor<128x!ky.ptr<f32>>, tensor<128xi1>) -> tensor<128xf32>
    %s = arith.addf %xv, %yv : tensor<128xf32>
    %op = "ky.splat"(%out) : (!ky.ptr<f32>) -> tensor<128x!ky.ptr<f32>>
    %os = "ky.addptr"(%op, %o) : (tensor<128x!ky.ptr<f32>>, tensor<128xi32>) -> tensor<128x!ky.ptr<f32>>
    "ky.store"(%os, %s, %m) <{operandSegmentSizes = array<i32: 1, 1, 1>}> : (tensor<128x!ky.ptr<f32>>, tensor<128xf32>, tensor<128xi1>) -> ()
""", "%x: !ky.ptr<f32>, %y: !ky.ptr<f32>, %out: !ky.ptr<f32>, %n: i32")


def test_vector_add_masked_tail_matches_numpy():
    n = 1000  # not a multiple of 128: the last program is masked
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
    out = np.full(n + 8, -7.0, np.float32)  # sentinel tail: must not be written
    run(VECTOR_ADD, ((n + 127) // 128,), x, y, out, n)
    np.testing.assert_array_equal(out[:n], x + y)
    assert (out[n:] == -7.0).all()


def _binary_kernel(op: str, t: str, n: int, rt: str | None = None, pred: str = "") -> str:
    """out[i] = op(a[i], b[i]) over one tile of n elements; `pred` for compares."""
    rt = rt or t
    p = f"{pred}, " if pred else ""
    return module(f"""
    %r = "ky.make_range"() <{{start = 0 : i32, end = {n} : i32}}> : () -> tensor<{n}xi32>
    %ap = "ky.splat"(%a) : (!ky.ptr<{t}>) -> tensor<{n}x!ky.ptr<{t}>>
    %aa = "ky.addptr"(%ap, %r) : (tensor<{n}x!ky.ptr<{t}>>, tensor<{n}xi32>) -> tensor<{n}x!ky.ptr<{t}>>
    %av = "ky.load"(%aa) <{{operandSegmentSizes = array<i32: 1, 0, 0>}}> : (tensor<{n}x!ky.ptr<{t}>>) -> tensor<{n}x{t}>
    %bp = "ky.splat"(%b) : (!ky.ptr<{t}>) -> tensor<{n}x!ky.ptr<{t}>>
    %ba = "ky.addptr"(%bp, %r) : (tensor<{n}x!ky.ptr<{t}>>, tensor<{n}xi32>) -> tensor<{n}x!ky.ptr<{t}>>
    %bv = "ky.load"(%ba) <{{operandSegmentSizes = array<i32: 1, 0, 0>}}> : (tensor<{n}x!ky.ptr<{t}>>) -> tensor<{n}x{t}>
    %v = {op} {p}%av, %bv : tensor<{n}x{t}> loc("k.py":9:1)
    %op = "ky.splat"(%o) : (!ky.ptr<{rt}>) -> tensor<{n}x!ky.ptr<{rt}>>
    %oa = "ky.addptr"(%op, %r) : (tensor<{n}x!ky.ptr<{rt}>>, tensor<{n}xi32>) -> tensor<{n}x!ky.ptr<{rt}>>
    "ky.store"(%oa, %v) <{{operandSegmentSizes = array<i32: 1, 1, 0>}}> : (tensor<{n}x!ky.ptr<{rt}>>, tensor<{n}x{rt}>) -> ()
""", f"%a: !ky.ptr<{t}>, %b: !ky.ptr<{t}>, %o: !ky.ptr<{rt}>")


def _binary(op, t, a, b, out_dtype=None, rt=None, pred=""):
    out = np.zeros(a.shape, out_dtype or a.dtype)
    run(_binary_kernel(op, t, a.size, rt, pred), (1,), a, b, out)
    return out


@pytest.mark.parametrize("t,npt", [("bf16", ml_dtypes.bfloat16), ("f16", np.float16)])
def test_narrow_float_ops_round_to_result_type_after_each_op(t, npt):
    rng = np.random.default_rng(1)
    a = rng.standard_normal(64).astype(npt)
    b = rng.standard_normal(64).astype(npt)
    for op, ref in [("arith.addf", np.add), ("arith.mulf", np.multiply), ("arith.divf", np.divide)]:
        got = _binary(op, t, a, b)
        want = ref(a.astype(np.float32), b.astype(np.float32)).astype(npt)  # f32 then round: exact
        np.testing.assert_array_equal(got.astype(np.float32), want.astype(np.float32))


def test_maximumf_propagates_nan():
    a = np.array([1.0, np.nan, 3.0, -0.0], np.float32)
    b = np.array([2.0, 1.0, np.nan, 0.0], np.float32)
    got = _binary("arith.maximumf", "f32", a, b)
    assert got[0] == 2.0 and np.isnan(got[1]) and np.isnan(got[2])


def test_integer_add_wraps():
    a = np.array([2**31 - 1, -2**31, 5, 0], np.int32)
    b = np.array([1, -1, -7, 0], np.int32)
    np.testing.assert_array_equal(_binary("arith.addi", "i32", a, b), np.array([-2**31, 2**31 - 1, -2, 0], np.int32))


def test_divsi_remsi_truncate_toward_zero():
    a = np.array([7, -7, 7, -7], np.int32)
    b = np.array([2, 2, -2, -2], np.int32)
    np.testing.assert_array_equal(_binary("arith.divsi", "i32", a, b), [3, -3, -3, 3])
    np.testing.assert_array_equal(_binary("arith.remsi", "i32", a, b), [1, -1, 1, -1])


def test_unsigned_ops_view_bits_as_unsigned():
    a = np.array([-1, 7, -8, 3], np.int32)  # -1 is 0xFFFFFFFF unsigned
    b = np.array([2, 2, 3, -1], np.int32)
    np.testing.assert_array_equal(_binary("arith.divui", "i32", a, b),
                                  (a.view(np.uint32) // b.view(np.uint32)).view(np.int32))
    np.testing.assert_array_equal(_binary("arith.remui", "i32", a, b),
                                  (a.view(np.uint32) % b.view(np.uint32)).view(np.int32))
    ult = _binary("arith.cmpi", "i32", a, b, np.bool_, "i1", "ult")
    np.testing.assert_array_equal(ult, [False, False, False, True])
    slt = _binary("arith.cmpi", "i32", a, b, np.bool_, "i1", "slt")
    np.testing.assert_array_equal(slt, [True, False, True, False])
    shr = _binary("arith.shrui", "i32", a, np.full(4, 28, np.int32))
    np.testing.assert_array_equal(shr, [15, 0, 15, 0])


def test_cmpf_unordered_predicates():
    a = np.array([1.0, np.nan, 2.0], np.float32)
    b = np.array([1.0, 1.0, 1.0], np.float32)
    np.testing.assert_array_equal(_binary("arith.cmpf", "f32", a, b, np.bool_, "i1", "une"), [False, True, True])
    np.testing.assert_array_equal(_binary("arith.cmpf", "f32", a, b, np.bool_, "i1", "one"), [False, False, True])
    np.testing.assert_array_equal(_binary("arith.cmpf", "f32", a, b, np.bool_, "i1", "ueq"), [True, True, False])


def test_integer_division_by_zero_is_reported_with_location():
    a = np.array([1, 2], np.int32)
    with pytest.raises(DeviceAssertError, match=r"k\.py:9: arith\.divsi: integer division by zero in program \(0, 0, 0\)"):
        _binary("arith.divsi", "i32", a, np.array([1, 0], np.int32))


def _unary_kernel(op: str, t: str, rt: str, n: int, suffix: str = "") -> str:
    return module(f"""
    %r = "ky.make_range"() <{{start = 0 : i32, end = {n} : i32}}> : () -> tensor<{n}xi32>
    %ap = "ky.splat"(%a) : (!ky.ptr<{t}>) -> tensor<{n}x!ky.ptr<{t}>>
    %aa = "ky.addptr"(%ap, %r) : (tensor<{n}x!ky.ptr<{t}>>, tensor<{n}xi32>) -> tensor<{n}x!ky.ptr<{t}>>
    %av = "ky.load"(%aa) <{{operandSegmentSizes = array<i32: 1, 0, 0>}}> : (tensor<{n}x!ky.ptr<{t}>>) -> tensor<{n}x{t}>
    %v = {op} %av {suffix}
    %op = "ky.splat"(%o) : (!ky.ptr<{rt}>) -> tensor<{n}x!ky.ptr<{rt}>>
    %oa = "ky.addptr"(%op, %r) : (tensor<{n}x!ky.ptr<{rt}>>, tensor<{n}xi32>) -> tensor<{n}x!ky.ptr<{rt}>>
    "ky.store"(%oa, %v) <{{operandSegmentSizes = array<i32: 1, 1, 0>}}> : (tensor<{n}x!ky.ptr<{rt}>>, tensor<{n}x{rt}>) -> ()
""", f"%a: !ky.ptr<{t}>, %o: !ky.ptr<{rt}>")


def _scalar_cast_kernel(op: str, t: str, rt: str) -> str:
    """out[pid] = op(a[pid]) with scalar loads and stores, one program per element.
    (xDSL 0.75 accepts these integer casts on scalars only; the interp implements tiles too.)"""
    return module(f"""
    %pid = "ky.program_id"() <{{axis = 0 : i32}}> : () -> i32
    %ap = "ky.addptr"(%a, %pid) : (!ky.ptr<{t}>, i32) -> !ky.ptr<{t}>
    %av = "ky.load"(%ap) <{{operandSegmentSizes = array<i32: 1, 0, 0>}}> : (!ky.ptr<{t}>) -> {t}
    %v = {op} %av : {t} to {rt}
    %op = "ky.addptr"(%o, %pid) : (!ky.ptr<{rt}>, i32) -> !ky.ptr<{rt}>
    "ky.store"(%op, %v) <{{operandSegmentSizes = array<i32: 1, 1, 0>}}> : (!ky.ptr<{rt}>, {rt}) -> ()
""", f"%a: !ky.ptr<{t}>, %o: !ky.ptr<{rt}>")


def _cast(op, t, rt, a, out_dtype):
    out = np.zeros(a.shape, out_dtype)
    run(_scalar_cast_kernel(op, t, rt), (a.size,), a, out)
    return out


def test_uitofp_and_sitofp():
    a = np.array([-1, 3, -2**31], np.int32)
    np.testing.assert_array_equal(_cast("arith.uitofp", "i32", "f32", a, np.float32),
                                  a.view(np.uint32).astype(np.float32))
    np.testing.assert_array_equal(_cast("arith.sitofp", "i32", "f32", a, np.float32), a.astype(np.float32))


def test_fptosi_fptoui():
    a = np.array([-2.7, 2.7, 3e9], np.float32)
    np.testing.assert_array_equal(_cast("arith.fptosi", "f32", "i32", a[:2], np.int32), [-2, 2])
    np.testing.assert_array_equal(_cast("arith.fptoui", "f32", "i32", a[1:], np.int32).view(np.uint32),
                                  [2, 3000000000])


def test_extui_extsi_trunci():
    a = np.array([-1, 127, -128], np.int8)
    np.testing.assert_array_equal(_cast("arith.extui", "i8", "i32", a, np.int32), [255, 127, 128])
    np.testing.assert_array_equal(_cast("arith.extsi", "i8", "i32", a, np.int32), [-1, 127, -128])
    w = np.array([0x1FF, -129, 2**31 - 1], np.int32)
    np.testing.assert_array_equal(_cast("arith.trunci", "i32", "i8", w, np.int8), w.astype(np.int8))


def test_truncf_extf_tiles_round_to_nearest_even():
    w = np.array([1.0 + 2**-9, 3.14159, -1e30], np.float32)
    h = np.zeros(3, ml_dtypes.bfloat16)
    run(_unary_kernel("arith.truncf", "f32", "bf16", 3, ": tensor<3xf32> to tensor<3xbf16>"), (1,), w, h)
    np.testing.assert_array_equal(h, w.astype(ml_dtypes.bfloat16))
    back = np.zeros(3, np.float32)
    run(_unary_kernel("arith.extf", "bf16", "f32", 3, ": tensor<3xbf16> to tensor<3xf32>"), (1,), h, back)
    np.testing.assert_array_equal(back, h.astype(np.float32))


@pytest.mark.parametrize("op,ref", [("math.exp", np.exp), ("math.sqrt", np.sqrt), ("math.tanh", np.tanh),
                                    ("math.erf", None), ("math.log1p", np.log1p)])
def test_math_ops_f32(op, ref):
    import math
    a = np.linspace(0.01, 3.0, 50, dtype=np.float32)
    out = np.zeros(50, np.float32)
    run(_unary_kernel(op, "f32", "f32", 50, ": tensor<50xf32>"), (1,), a, out)
    want = np.array([math.erf(v) for v in a.astype(np.float64)]) if ref is None else ref(a.astype(np.float64))
    np.testing.assert_allclose(out, want, rtol=2e-6, atol=1e-7)
