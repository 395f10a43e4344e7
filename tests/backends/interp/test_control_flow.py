"""scf.for (loop-carried tiles), scf.if (with results), scf.while."""

import numpy as np

from .helpers import module, run

STORE_F32 = """
    "ky.store"(%o, %{v}) <{{operandSegmentSizes = array<i32: 1, 1, 0>}}> : (!ky.ptr<f32>, f32) -> ()"""


def test_for_accumulates_tiles_over_blocks():
    # out = sum(x[0:n]) in blocks of 16 with a loop-carried tile accumulator
    n = 160
    x = np.random.default_rng(6).standard_normal(n).astype(np.float32)
    out = np.zeros(1, np.float32)
    run(module("""
    %c0 = arith.constant 0 : i32
    %c16 = arith.constant 16 : i32
    %z = arith.constant 0.0 : f32
    %zs = "ky.splat"(%z) : (f32) -> tensor<16xf32>
    %r = "ky.make_range"() <{start = 0 : i32, end = 16 : i32}> : () -> tensor<16xi32>
    %acc = scf.for %i = %c0 to %n step %c16 iter_args(%a = %zs) -> (tensor<16xf32>) : i32 {
      %is = "ky.splat"(%i) : (i32) -> tensor<16xi32>
      %off = arith.addi %is, %r : tensor<16xi32>
      %xp = "ky.splat"(%x) : (!ky.ptr<f32>) -> tensor<16x!ky.ptr<f32>>
      %xa = "ky.addptr"(%xp, %off) : (tensor<16x!ky.ptr<f32>>, tensor<16xi32>) -> tensor<16x!ky.ptr<f32>>
      %xv = "ky.load"(%xa) <{operandSegmentSizes = array<i32: 1, 0, 0>}> : (tensor<16x!ky.ptr<f32>>) -> tensor<16xf32>
      %na = arith.addf %a, %xv : tensor<16xf32>
      scf.yield %na : tensor<16xf32>
    }
    %s = "ky.reduce"(%acc) <{axis = 0 : i32}> ({
    ^bb0(%p: f32, %q: f32):
      %t = arith.addf %p, %q : f32
      "ky.yield"(%t) : (f32) -> ()
    }) : (tensor<16xf32>) -> f32""" + STORE_F32.format(v="s"), "%x: !ky.ptr<f32>, %o: !ky.ptr<f32>, %n: i32"),
        (1,), x, out, n)
    np.testing.assert_allclose(out[0], x.astype(np.float64).sum(), rtol=1e-5)


def test_for_with_zero_trips_returns_init():
    out = np.zeros(1, np.float32)
    run(module("""
    %c0 = arith.constant 0 : i32
    %c1 = arith.constant 1 : i32
    %init = arith.constant 42.0 : f32
    %one = arith.constant 1.0 : f32
    %s = scf.for %i = %c0 to %n step %c1 iter_args(%a = %init) -> (f32) : i32 {
      %b = arith.addf %a, %one : f32
      scf.yield %b : f32
    }""" + STORE_F32.format(v="s"), "%o: !ky.ptr<f32>, %n: i32"), (1,), out, 0)
    assert out[0] == 42.0


def test_if_with_results_picks_branch_per_program():
    out = np.zeros(4, np.float32)
    run(module("""
    %pid = "ky.program_id"() <{axis = 0 : i32}> : () -> i32
    %two = arith.constant 2 : i32
    %c = arith.cmpi slt, %pid, %two : i32
    %a = arith.constant 1.5 : f32
    %b = arith.constant -3.0 : f32
    %v = scf.if %c -> (f32) {
      scf.yield %a : f32
    } else {
      scf.yield %b : f32
    }
    %p = "ky.addptr"(%o, %pid) : (!ky.ptr<f32>, i32) -> !ky.ptr<f32>
    "ky.store"(%p, %v) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : (!ky.ptr<f32>, f32) -> ()
""", "%o: !ky.ptr<f32>"), (4,), out)
    np.testing.assert_array_equal(out, [1.5, 1.5, -3.0, -3.0])


def test_if_without_else_only_runs_when_true():
    out = np.zeros(3, np.int32)
    run(module("""
    %pid = "ky.program_id"() <{axis = 0 : i32}> : () -> i32
    %one = arith.constant 1 : i32
    %c = arith.cmpi eq, %pid, %one : i32
    scf.if %c {
      %p = "ky.addptr"(%o, %pid) : (!ky.ptr<i32>, i32) -> !ky.ptr<i32>
      "ky.store"(%p, %pid) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : (!ky.ptr<i32>, i32) -> ()
    }
""", "%o: !ky.ptr<i32>"), (3,), out)
    np.testing.assert_array_equal(out, [0, 1, 0])


def test_while_collatz_steps():
    out = np.zeros(1, np.int32)
    run(module("""
    %c0 = arith.constant 0 : i32
    %c1 = arith.constant 1 : i32
    %c2 = arith.constant 2 : i32
    %c3 = arith.constant 3 : i32
    %w:2 = scf.while (%x = %start, %k = %c0) : (i32, i32) -> (i32, i32) {
      %more = arith.cmpi ne, %x, %c1 : i32
      scf.condition(%more) %x, %k : i32, i32
    } do {
    ^bb0(%x2: i32, %k2: i32):
      %r = arith.remsi %x2, %c2 : i32
      %odd = arith.cmpi eq, %r, %c1 : i32
      %h = arith.divsi %x2, %c2 : i32
      %t = arith.muli %x2, %c3 : i32
      %t1 = arith.addi %t, %c1 : i32
      %nx = arith.select %odd, %t1, %h : i1, i32
      %nk = arith.addi %k2, %c1 : i32
      scf.yield %nx, %nk : i32, i32
    }
    "ky.store"(%o, %w#1) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : (!ky.ptr<i32>, i32) -> ()
""", "%o: !ky.ptr<i32>, %start: i32"), (1,), out, 27)
    assert out[0] == 111  # 27 reaches 1 after 111 steps
