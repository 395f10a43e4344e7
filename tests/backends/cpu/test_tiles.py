"""2-D tiles: broadcast, reductions along each axis, argmax, scan, dot."""

import ml_dtypes
import numpy as np
import pytest

from .helpers import Compiled, combiner, load, module, offsets2d, ptrs, store

M, N = 16, 32


def two_d_kernel() -> str:
    body = "\n".join([
        offsets2d("off", M, N),
        ptrs("xp", "x", "off", f"{M}x{N}", "f32"), load("xv", "xp", f"{M}x{N}", "f32"),
        f'    %ri = "ky.make_range"() <{{start = 0 : i32, end = {M} : i32}}> : () -> tensor<{M}xi32>',
        f'    %rj = "ky.make_range"() <{{start = 0 : i32, end = {N} : i32}}> : () -> tensor<{N}xi32>',
        ptrs("sp", "s", "ri", f"{M}", "f32"), load("sv", "sp", f"{M}", "f32"),
        ptrs("bp", "b", "rj", f"{N}", "f32"), load("bv", "bp", f"{N}", "f32"),
        f'    %sv2 = "ky.expand_dims"(%sv) <{{axis = 1 : i32}}> : (tensor<{M}xf32>) -> tensor<{M}x1xf32>',
        f'    %svb = "ky.broadcast"(%sv2) : (tensor<{M}x1xf32>) -> tensor<{M}x{N}xf32>',
        f'    %bv2 = "ky.expand_dims"(%bv) <{{axis = 0 : i32}}> : (tensor<{N}xf32>) -> tensor<1x{N}xf32>',
        f'    %bvb = "ky.broadcast"(%bv2) : (tensor<1x{N}xf32>) -> tensor<{M}x{N}xf32>',
        f"    %mu = arith.mulf %xv, %svb : tensor<{M}x{N}xf32>",
        f"    %o = arith.addf %mu, %bvb : tensor<{M}x{N}xf32>",
        ptrs("op", "out", "off", f"{M}x{N}", "f32"), store("op", "o", f"{M}x{N}", "f32"),
        f'    %cs = "ky.reduce"(%o) <{{axis = 0 : i32}}> {combiner("arith.addf", "f32")} : '
        f"(tensor<{M}x{N}xf32>) -> tensor<{N}xf32>",
        ptrs("csp", "colsum", "rj", f"{N}", "f32"), store("csp", "cs", f"{N}", "f32"),
        f'    %rm = "ky.reduce"(%o) <{{axis = 1 : i32}}> {combiner("arith.maximumf", "f32")} : '
        f"(tensor<{M}x{N}xf32>) -> tensor<{M}xf32>",
        ptrs("rmp", "rowmax", "ri", f"{M}", "f32"), store("rmp", "rm", f"{M}", "f32"),
        f'    %cm = "ky.reduce"(%o) <{{axis = 0 : i32}}> {combiner("arith.minimumf", "f32")} : '
        f"(tensor<{M}x{N}xf32>) -> tensor<{N}xf32>",
        ptrs("cmp", "colmin", "rj", f"{N}", "f32"), store("cmp", "cm", f"{N}", "f32"),
        f'    %cu = "ky.scan"(%o) <{{axis = 1 : i32}}> {combiner("arith.addf", "f32")} : '
        f"(tensor<{M}x{N}xf32>) -> tensor<{M}x{N}xf32>",
        ptrs("cup", "cum", "off", f"{M}x{N}", "f32"), store("cup", "cu", f"{M}x{N}", "f32"),
    ])
    return module(body, ", ".join(f"%{a}: !ky.ptr<f32>" for a in
                                  ["x", "s", "b", "out", "colsum", "rowmax", "colmin", "cum"]))


def test_2d_broadcast_reduce_each_axis_and_scan():
    k = Compiled(two_d_kernel())
    rng = np.random.default_rng(2)
    x = rng.standard_normal((M, N)).astype(np.float32)
    s, b = rng.standard_normal(M).astype(np.float32), rng.standard_normal(N).astype(np.float32)
    x[3, 5] = np.nan                                   # maximumf/minimumf propagate NaN
    out, cum = np.zeros((M, N), np.float32), np.zeros((M, N), np.float32)
    colsum, colmin, rowmax = np.zeros(N, np.float32), np.zeros(N, np.float32), np.zeros(M, np.float32)
    k((1,), x, s, b, out, colsum, rowmax, colmin, cum)
    ref = x * s[:, None] + b[None, :]
    np.testing.assert_array_equal(out, ref)            # one mul and one add, each rounded: exact
    np.testing.assert_allclose(colsum, ref.sum(axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(rowmax, ref.max(axis=1))
    np.testing.assert_array_equal(colmin, ref.min(axis=0))
    assert np.isnan(rowmax[3]) and np.isnan(colmin[5])
    np.testing.assert_allclose(cum, np.cumsum(ref, axis=1), rtol=1e-5, atol=1e-5)


def test_reduce_1d_nan_propagates_through_vectorised_max():
    text = module("\n".join([
        '    %r = "ky.make_range"() <{start = 0 : i32, end = 1024 : i32}> : () -> tensor<1024xi32>',
        ptrs("xp", "x", "r", "1024", "f32"), load("xv", "xp", "1024", "f32"),
        f'    %m = "ky.reduce"(%xv) <{{axis = 0 : i32}}> {combiner("arith.maximumf", "f32")} : (tensor<1024xf32>) -> f32',
        f'    %s = "ky.reduce"(%xv) <{{axis = 0 : i32}}> {combiner("arith.addf", "f32")} : (tensor<1024xf32>) -> f32',
        '    "ky.store"(%y, %m) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : (!ky.ptr<f32>, f32) -> ()',
        '    %y1 = arith.constant 1 : i32',
        '    %yp = "ky.addptr"(%y, %y1) : (!ky.ptr<f32>, i32) -> !ky.ptr<f32>',
        '    "ky.store"(%yp, %s) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : (!ky.ptr<f32>, f32) -> ()',
    ]), "%x: !ky.ptr<f32>, %y: !ky.ptr<f32>")
    k = Compiled(text)
    x = np.random.default_rng(3).standard_normal(1024).astype(np.float32)
    y = np.zeros(2, np.float32)
    k((1,), x, y)
    assert y[0] == x.max()
    np.testing.assert_allclose(y[1], x.astype(np.float64).sum(), rtol=1e-5)
    x[700] = np.nan
    k((1,), x, y)
    assert np.isnan(y[0]) and np.isnan(y[1])


ARGMAX = module("\n".join([
    '    %r = "ky.make_range"() <{start = 0 : i32, end = 64 : i32}> : () -> tensor<64xi32>',
    ptrs("xp", "x", "r", "64", "f32"), load("xv", "xp", "64", "f32"),
    '''    %v, %i = "ky.reduce"(%xv, %r) <{axis = 0 : i32}> ({
    ^bb0(%av: f32, %ai: i32, %bv: f32, %bi: i32):
      %gt = arith.cmpf ogt, %bv, %av : f32
      %eq = arith.cmpf oeq, %bv, %av : f32
      %lt = arith.cmpi slt, %bi, %ai : i32
      %tie = arith.andi %eq, %lt : i1
      %take = arith.ori %gt, %tie : i1
      %nv = arith.select %take, %bv, %av : i1, f32
      %ni = arith.select %take, %bi, %ai : i1, i32
      "ky.yield"(%nv, %ni) : (f32, i32) -> ()
    }) : (tensor<64xf32>, tensor<64xi32>) -> (f32, i32)''',
    '    "ky.store"(%out, %i) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : (!ky.ptr<i32>, i32) -> ()',
]), "%x: !ky.ptr<f32>, %out: !ky.ptr<i32>")


def test_argmax_two_operand_reduce():
    k = Compiled(ARGMAX)
    x = np.random.default_rng(4).standard_normal(64).astype(np.float32)
    x[17] = x[41] = 9.0                                 # tie: the lower index wins
    out = np.zeros(1, np.int32)
    k((1,), x, out)
    assert out[0] == 17 == np.argmax(x)


def dot_kernel(elem: str, acc: str, m=16, kk=8, n=32) -> str:
    body = "\n".join([
        offsets2d("ao", m, kk), offsets2d("bo", kk, n), offsets2d("co", m, n),
        ptrs("ap", "a", "ao", f"{m}x{kk}", elem), load("av", "ap", f"{m}x{kk}", elem),
        ptrs("bp", "b", "bo", f"{kk}x{n}", elem), load("bv", "bp", f"{kk}x{n}", elem),
        ptrs("cp", "c", "co", f"{m}x{n}", acc), load("cv", "cp", f"{m}x{n}", acc),
        f'    %d = "ky.dot"(%av, %bv, %cv) : (tensor<{m}x{kk}x{elem}>, tensor<{kk}x{n}x{elem}>, '
        f"tensor<{m}x{n}x{acc}>) -> tensor<{m}x{n}x{acc}>",
        store("cp", "d", f"{m}x{n}", acc),
    ])
    return module(body, f"%a: !ky.ptr<{elem}>, %b: !ky.ptr<{elem}>, %c: !ky.ptr<{acc}>")


@pytest.mark.parametrize("elem,npt,tol", [("f32", np.float32, 1e-5), ("f16", np.float16, 1e-5),
                                          ("bf16", ml_dtypes.bfloat16, 1e-5)])
def test_dot_float(elem, npt, tol):
    k = Compiled(dot_kernel(elem, "f32"))
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((16, 8)).astype(npt), rng.standard_normal((8, 32)).astype(npt)
    c = rng.standard_normal((16, 32)).astype(np.float32)
    ref = c.astype(np.float64) + a.astype(np.float64) @ b.astype(np.float64)   # inputs exact in f32
    k((1,), a, b, c)
    np.testing.assert_allclose(c, ref, rtol=tol, atol=tol)


def test_dot_i8_accumulates_in_i32():
    k = Compiled(dot_kernel("i8", "i32"))
    rng = np.random.default_rng(6)
    a, b = rng.integers(-128, 128, (16, 8), dtype=np.int8), rng.integers(-128, 128, (8, 32), dtype=np.int8)
    c = rng.integers(-1000, 1000, (16, 32), dtype=np.int32)
    ref = c + a.astype(np.int32) @ b.astype(np.int32)
    k((1,), a, b, c)
    np.testing.assert_array_equal(c, ref)
