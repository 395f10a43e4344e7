"""scf.for / scf.if / scf.while, carried tiles and scalars, swapped yields."""

import numpy as np

from .helpers import Compiled, load, module, ptrs, store

FOR_ACC = module("\n".join([
    '    %r = "ky.make_range"() <{start = 0 : i32, end = 64 : i32}> : () -> tensor<64xi32>',
    '    %z = arith.constant 0.0 : f32',
    '    %zs = "ky.splat"(%z) : (f32) -> tensor<64xf32>',
    '    %lb = arith.constant 0 : i32',
    '    %st = arith.constant 1 : i32',
    '    %c64 = arith.constant 64 : i32',
    '    %one = arith.constant 1.0 : f32',
    '''    %acc, %a, %b = scf.for %i = %lb to %n step %st iter_args(%acc_i = %zs, %a_i = %z, %b_i = %one) -> (tensor<64xf32>, f32, f32) : i32 {
      %row = arith.muli %i, %c64 : i32
      %rs = "ky.splat"(%row) : (i32) -> tensor<64xi32>
      %o = arith.addi %rs, %r : tensor<64xi32>
      %xs = "ky.splat"(%x) : (!ky.ptr<f32>) -> tensor<64x!ky.ptr<f32>>
      %xp = "ky.addptr"(%xs, %o) : (tensor<64x!ky.ptr<f32>>, tensor<64xi32>) -> tensor<64x!ky.ptr<f32>>
      %xv = "ky.load"(%xp) <{operandSegmentSizes = array<i32: 1, 0, 0>}> : (tensor<64x!ky.ptr<f32>>) -> tensor<64xf32>
      %new = arith.addf %acc_i, %xv : tensor<64xf32>
      scf.yield %new, %b_i, %a_i : tensor<64xf32>, f32, f32
    }''',
    ptrs("yp", "y", "r", "64", "f32"), store("yp", "acc", "64", "f32"),
    '    %c1 = arith.constant 1 : i32',
    '    %sp = "ky.addptr"(%s, %c1) : (!ky.ptr<f32>, i32) -> !ky.ptr<f32>',
    '    "ky.store"(%s, %a) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : (!ky.ptr<f32>, f32) -> ()',
    '    "ky.store"(%sp, %b) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : (!ky.ptr<f32>, f32) -> ()',
]), "%x: !ky.ptr<f32>, %y: !ky.ptr<f32>, %s: !ky.ptr<f32>, %n: i32")


def test_scf_for_accumulates_tile_and_swaps_scalars():
    k = Compiled(FOR_ACC)
    x = np.random.default_rng(7).standard_normal((5, 64)).astype(np.float32)
    for n in (5, 4, 0):
        y, s = np.zeros(64, np.float32), np.zeros(2, np.float32)
        k((1,), x, y, s, (n, "i32"))
        ref = np.zeros(64, np.float32)
        for i in range(n):
            ref = ref + x[i]
        np.testing.assert_array_equal(y, ref)          # same order of f32 adds: exact
        assert list(s) == ([0.0, 1.0] if n % 2 == 0 else [1.0, 0.0])   # yield %b, %a swaps


SWAP_TILES = module("\n".join([
    '    %r = "ky.make_range"() <{start = 0 : i32, end = 8 : i32}> : () -> tensor<8xi32>',
    '    %c8 = arith.constant 8 : i32',
    '    %r8s = "ky.splat"(%c8) : (i32) -> tensor<8xi32>',
    '    %r8 = arith.addi %r, %r8s : tensor<8xi32>',
    '    %lb = arith.constant 0 : i32',
    '    %st = arith.constant 1 : i32',
    '''    %p, %q = scf.for %i = %lb to %n step %st iter_args(%pi = %r, %qi = %r8) -> (tensor<8xi32>, tensor<8xi32>) : i32 {
      scf.yield %qi, %pi : tensor<8xi32>, tensor<8xi32>
    }''',
    ptrs("yp", "y", "r", "8", "i32"), store("yp", "p", "8", "i32"),
]), "%y: !ky.ptr<i32>, %n: i32")


def test_scf_for_swapped_tile_yield():
    k = Compiled(SWAP_TILES)
    for n, ref in ((3, np.arange(8, 16)), (4, np.arange(8))):
        y = np.zeros(8, np.int32)
        k((1,), y, (n, "i32"))
        np.testing.assert_array_equal(y, ref)


IF_WHILE = module("\n".join([
    '    %pid = "ky.program_id"() <{axis = 0 : i32}> : () -> i32',
    '    %c2 = arith.constant 2 : i32',
    '    %rem = arith.remsi %pid, %c2 : i32',
    '    %z = arith.constant 0 : i32',
    '    %even = arith.cmpi eq, %rem, %z : i32',
    '    %r = "ky.make_range"() <{start = 0 : i32, end = 4 : i32}> : () -> tensor<4xi32>',
    '''    %t, %s = scf.if %even -> (tensor<4xi32>, i32) {
      %ten = arith.constant 10 : i32
      %tens = "ky.splat"(%ten) : (i32) -> tensor<4xi32>
      %a = arith.addi %r, %tens : tensor<4xi32>
      scf.yield %a, %ten : tensor<4xi32>, i32
    } else {
      %m = arith.muli %pid, %pid : i32
      scf.yield %r, %m : tensor<4xi32>, i32
    }''',
    '    %c4 = arith.constant 4 : i32',
    '    %row = arith.muli %pid, %c4 : i32',
    '    %rs = "ky.splat"(%row) : (i32) -> tensor<4xi32>',
    '    %o = arith.addi %rs, %r : tensor<4xi32>',
    ptrs("tp", "tout", "o", "4", "i32"), store("tp", "t", "4", "i32"),
    # while: collatz steps of (pid + 1)
    '    %one = arith.constant 1 : i32',
    '    %start = arith.addi %pid, %one : i32',
    '''    %fin, %steps = scf.while (%v = %start, %k = %z) : (i32, i32) -> (i32, i32) {
      %ne = arith.cmpi ne, %v, %one : i32
      scf.condition(%ne) %v, %k : i32, i32
    } do {
    ^bb0(%v2: i32, %k2: i32):
      %r2 = arith.remsi %v2, %c2 : i32
      %isev = arith.cmpi eq, %r2, %z : i32
      %half = arith.divsi %v2, %c2 : i32
      %three = arith.constant 3 : i32
      %t3 = arith.muli %v2, %three : i32
      %t31 = arith.addi %t3, %one : i32
      %nv = arith.select %isev, %half, %t31 : i1, i32
      %nk = arith.addi %k2, %one : i32
      scf.yield %nv, %nk : i32, i32
    }''',
    '    %ad = arith.addi %s, %steps : i32',
    '    %sp = "ky.addptr"(%sout, %pid) : (!ky.ptr<i32>, i32) -> !ky.ptr<i32>',
    '    "ky.store"(%sp, %ad) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : (!ky.ptr<i32>, i32) -> ()',
]), "%tout: !ky.ptr<i32>, %sout: !ky.ptr<i32>")


def collatz(v):
    k = 0
    while v != 1:
        v = v // 2 if v % 2 == 0 else 3 * v + 1
        k += 1
    return k


def test_scf_if_with_results_and_scf_while():
    k = Compiled(IF_WHILE)
    g = 9
    t, s = np.zeros((g, 4), np.int32), np.zeros(g, np.int32)
    k((g,), t, s)
    for p in range(g):
        np.testing.assert_array_equal(t[p], np.arange(4) + (10 if p % 2 == 0 else 0))
        assert s[p] == (10 if p % 2 == 0 else p * p) + collatz(p + 1)
