"""ky.reduce (single-op fast path and generic combiners), ky.scan, ky.dot."""

import numpy as np
import pytest

from .helpers import module, run


def _load_tile(name: str, t: str, n: int, m: int | None = None) -> str:
    """IR that loads a row-major n (or n x m) tile from pointer %<name> into %<name>v."""
    if m is None:
        return f"""
    %{name}r = "ky.make_range"() <{{start = 0 : i32, end = {n} : i32}}> : () -> tensor<{n}xi32>
    %{name}p = "ky.splat"(%{name}) : (!ky.ptr<{t}>) -> tensor<{n}x!ky.ptr<{t}>>
    %{name}a = "ky.addptr"(%{name}p, %{name}r) : (tensor<{n}x!ky.ptr<{t}>>, tensor<{n}xi32>) -> tensor<{n}x!ky.ptr<{t}>>
    %{name}v = "ky.load"(%{name}a) <{{operandSegmentSizes = array<i32: 1, 0, 0>}}> : (tensor<{n}x!ky.ptr<{t}>>) -> tensor<{n}x{t}>"""
    nm = n * m
    return f"""
    %{name}r = "ky.make_range"() <{{start = 0 : i32, end = {nm} : i32}}> : () -> tensor<{nm}xi32>
    %{name}q = "ky.reshape"(%{name}r) : (tensor<{nm}xi32>) -> tensor<{n}x{m}xi32>
    %{name}p = "ky.splat"(%{name}) : (!ky.ptr<{t}>) -> tensor<{n}x{m}x!ky.ptr<{t}>>
    %{name}a = "ky.addptr"(%{name}p, %{name}q) : (tensor<{n}x{m}x!ky.ptr<{t}>>, tensor<{n}x{m}xi32>) -> tensor<{n}x{m}x!ky.ptr<{t}>>
    %{name}v = "ky.load"(%{name}a) <{{operandSegmentSizes = array<i32: 1, 0, 0>}}> : (tensor<{n}x{m}x!ky.ptr<{t}>>) -> tensor<{n}x{m}x{t}>"""


def _store_scalar(ptr: str, val: str, t: str) -> str:
    return f"""
    "ky.store"(%{ptr}, %{val}) <{{operandSegmentSizes = array<i32: 1, 1, 0>}}> : (!ky.ptr<{t}>, {t}) -> ()"""


@pytest.mark.parametrize("op,ref", [("arith.addf", np.sum), ("arith.maximumf", np.max), ("arith.minimumf", np.min)])
def test_reduce_1d_to_scalar(op, ref):
    x = np.random.default_rng(2).standard_normal(100).astype(np.float32)
    out = np.zeros(1, np.float32)
    run(module(_load_tile("x", "f32", 100) + f"""
    %s = "ky.reduce"(%xv) <{{axis = 0 : i32}}> ({{
    ^bb0(%a: f32, %b: f32):
      %z = {op} %a, %b : f32
      "ky.yield"(%z) : (f32) -> ()
    }}) : (tensor<100xf32>) -> f32""" + _store_scalar("o", "s", "f32"), "%x: !ky.ptr<f32>, %o: !ky.ptr<f32>"),
        (1,), x, out)
    np.testing.assert_allclose(out[0], ref(x), rtol=1e-5)  # numpy's pairwise sum: rounding differs only


def test_reduce_2d_axis1_generic_combiner():
    # a two-op combiner (a + b*1.0 keeps it off the fast path) must still sum rows
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    out = np.zeros(3, np.float32)
    run(module(_load_tile("x", "f32", 3, 4) + """
    %s = "ky.reduce"(%xv) <{axis = 1 : i32}> ({
    ^bb0(%a: f32, %b: f32):
      %one = arith.constant 1.0 : f32
      %bb = arith.mulf %b, %one : f32
      %z = arith.addf %a, %bb : f32
      "ky.yield"(%z) : (f32) -> ()
    }) : (tensor<3x4xf32>) -> tensor<3xf32>
    %r = "ky.make_range"() <{start = 0 : i32, end = 3 : i32}> : () -> tensor<3xi32>
    %op = "ky.splat"(%o) : (!ky.ptr<f32>) -> tensor<3x!ky.ptr<f32>>
    %oa = "ky.addptr"(%op, %r) : (tensor<3x!ky.ptr<f32>>, tensor<3xi32>) -> tensor<3x!ky.ptr<f32>>
    "ky.store"(%oa, %s) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : (tensor<3x!ky.ptr<f32>>, tensor<3xf32>) -> ()
""", "%x: !ky.ptr<f32>, %o: !ky.ptr<f32>"), (1,), x, out)
    np.testing.assert_array_equal(out, x.sum(axis=1))


ARGMAX = """
    %idx = "ky.make_range"() <{start = 0 : i32, end = 37 : i32}> : () -> tensor<37xi32>
    %m:2 = "ky.reduce"(%xv, %idx) <{axis = 0 : i32}> ({
    ^bb0(%va: f32, %ia: i32, %vb: f32, %ib: i32):
      %gt = arith.cmpf ogt, %va, %vb : f32
      %eq = arith.cmpf oeq, %va, %vb : f32
      %lt = arith.cmpi slt, %ia, %ib : i32
      %tie = arith.andi %eq, %lt : i1
      %take = arith.ori %gt, %tie : i1
      %v = arith.select %take, %va, %vb : i1, f32
      %i = arith.select %take, %ia, %ib : i1, i32
      "ky.yield"(%v, %i) : (f32, i32) -> ()
    }) : (tensor<37xf32>, tensor<37xi32>) -> (f32, i32)
"""


def test_argmax_two_operand_reduce_prefers_first_index_on_ties():
    x = np.random.default_rng(3).standard_normal(37).astype(np.float32)
    x[[5, 30]] = 10.0  # tie: the smaller index wins
    vo, io = np.zeros(1, np.float32), np.zeros(1, np.int32)
    run(module(_load_tile("x", "f32", 37) + ARGMAX + _store_scalar("vo", "m#0", "f32")
               + _store_scalar("io", "m#1", "i32"),
               "%x: !ky.ptr<f32>, %vo: !ky.ptr<f32>, %io: !ky.ptr<i32>"), (1,), x, vo, io)
    assert vo[0] == 10.0 and io[0] == 5


def _scan_kernel(t, n, body, store_t=None):
    return module(_load_tile("x", t, n) + f"""
    %s = "ky.scan"(%xv) <{{axis = 0 : i32}}> ({{
    ^bb0(%a: {t}, %b: {t}):
{body}
    }}) : (tensor<{n}x{t}>) -> tensor<{n}x{t}>
    %op = "ky.splat"(%o) : (!ky.ptr<{t}>) -> tensor<{n}x!ky.ptr<{t}>>
    %oa = "ky.addptr"(%op, %xr) : (tensor<{n}x!ky.ptr<{t}>>, tensor<{n}xi32>) -> tensor<{n}x!ky.ptr<{t}>>
    "ky.store"(%oa, %s) <{{operandSegmentSizes = array<i32: 1, 1, 0>}}> : (tensor<{n}x!ky.ptr<{t}>>, tensor<{n}x{t}>) -> ()
""", f"%x: !ky.ptr<{t}>, %o: !ky.ptr<{t}>")


def test_scan_cumsum_int_fast_path():
    x = np.arange(1, 51, dtype=np.int32)
    out = np.zeros(50, np.int32)
    run(_scan_kernel("i32", 50, """      %z = arith.addi %a, %b : i32
      "ky.yield"(%z) : (i32) -> ()"""), (1,), x, out)
    np.testing.assert_array_equal(out, np.cumsum(x))


def test_scan_generic_combiner_is_inclusive_prefix():
    # acc*2 + x is not associative, so use a genuinely associative two-op one: max(a, b) via cmp+select
    x = np.random.default_rng(4).integers(-100, 100, 45).astype(np.int32)
    out = np.zeros(45, np.int32)
    run(_scan_kernel("i32", 45, """      %c = arith.cmpi sgt, %a, %b : i32
      %z = arith.select %c, %a, %b : i1, i32
      "ky.yield"(%z) : (i32) -> ()"""), (1,), x, out)
    np.testing.assert_array_equal(out, np.maximum.accumulate(x))


def _dot_kernel(t, acc_t, m, k, n):
    return module(_load_tile("a", t, m, k) + _load_tile("b", t, k, n) + _load_tile("c", acc_t, m, n) + f"""
    %d = "ky.dot"(%av, %bv, %cv) : (tensor<{m}x{k}x{t}>, tensor<{k}x{n}x{t}>, tensor<{m}x{n}x{acc_t}>) -> tensor<{m}x{n}x{acc_t}>
    "ky.store"(%ca, %d) <{{operandSegmentSizes = array<i32: 1, 1, 0>}}> : (tensor<{m}x{n}x!ky.ptr<{acc_t}>>, tensor<{m}x{n}x{acc_t}>) -> ()
""", f"%a: !ky.ptr<{t}>, %b: !ky.ptr<{t}>, %c: !ky.ptr<{acc_t}>")


@pytest.mark.parametrize("t,npt,tol", [("f32", np.float32, 1e-5), ("f16", np.float16, 1e-5), ("i8", np.int8, 0)])
def test_dot_accumulates_in_acc_type(t, npt, tol):
    rng = np.random.default_rng(5)
    m, k, n = 16, 32, 8
    if t == "i8":
        a = rng.integers(-128, 128, (m, k)).astype(np.int8)
        b = rng.integers(-128, 128, (k, n)).astype(np.int8)
        acc_t, acc = "i32", rng.integers(-1000, 1000, (m, n)).astype(np.int32)
    else:
        a, b = rng.standard_normal((m, k)).astype(npt), rng.standard_normal((k, n)).astype(npt)
        acc_t, acc = "f32", rng.standard_normal((m, n)).astype(np.float32)
    want = acc.astype(np.float64) + a.astype(np.float64) @ b.astype(np.float64)
    run(_dot_kernel(t, acc_t, m, k, n), (1,), a, b, acc)
    # f32 accumulation of exact products (f16*f16 is exact in f32): error ~ k * eps(f32) * |terms|
    np.testing.assert_allclose(acc, want, rtol=tol, atol=tol * 10)
