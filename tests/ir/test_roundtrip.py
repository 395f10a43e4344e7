"""print → parse → print gives the same text: for frontend-generated modules and hand-written IR."""

from __future__ import annotations

import pytest

import kaiyuan as ky
import kaiyuan.ir as kir
from kaiyuan.ir import parse_module, print_module

from ..kernel_ir import raw_ir
from .kernels import ALL, SIG


def roundtrip(text: str) -> str:
    return print_module(parse_module(text))


@pytest.mark.parametrize("kernel", ALL, ids=[k.name for k in ALL])
@pytest.mark.parametrize("stage", ["frontend", "simplified"])
def test_frontend_modules_round_trip(kernel, stage):
    if stage == "frontend":
        text = raw_ir(kernel, SIG, {"BLOCK": 16})
    else:
        text = ky.compile(kernel, target="interp", signature=SIG, constants={"BLOCK": 16}).asm["ky"]
    assert text.startswith('builtin.module attributes {ky.version = "0.1"}')
    assert roundtrip(text) == text
    assert 'loc("' in text


@pytest.mark.parametrize("kernel", ALL, ids=[k.name for k in ALL])
def test_without_locations_round_trip(kernel):
    text = print_module(parse_module(raw_ir(kernel, SIG, {"BLOCK": 8})), locations=False)
    assert "loc(" not in text
    assert print_module(parse_module(text), locations=False) == text


def test_frontend_module_contains_the_expected_ops():
    from .kernels import k_atomics, k_if_while, k_reduce_dot

    text = raw_ir(k_reduce_dot, SIG, {"BLOCK": 16})
    for op in ("ky.dot", "ky.trans", "ky.reduce", "ky.scan", "ky.reshape", "ky.expand_dims", "ky.broadcast"):
        assert op in text, op
    text = raw_ir(k_atomics, SIG, {"BLOCK": 16})
    for op in ("ky.atomic_rmw", "ky.atomic_cas", "ky.print", "ky.assert"):
        assert op in text, op
    text = raw_ir(k_if_while, SIG, {"BLOCK": 16})
    for op in ("scf.if", "scf.while", "scf.condition", "ky.num_programs"):
        assert op in text, op


HAND = '''builtin.module attributes {ky.version = "0.1"} {
  func.func @hand(%0: !ky.ptr<f32>, %1: !ky.ptr<i32>, %2: i32, %3: f16) {
    %4 = "ky.program_id"() <{axis = 1 : i32}> : () -> i32 loc("hand.py":3:1)
    %5 = "ky.num_programs"() <{axis = 2 : i32}> : () -> i32
    %6 = "ky.make_range"() <{start = 0 : i32, end = 8 : i32}> : () -> tensor<8xi32>
    %7 = "ky.expand_dims"(%6) <{axis = 1 : i32}> : (tensor<8xi32>) -> tensor<8x1xi32>
    %8 = "ky.broadcast"(%7) : (tensor<8x1xi32>) -> tensor<8x4xi32>
    %9 = "ky.trans"(%8) <{order = array<i32: 1, 0>}> : (tensor<8x4xi32>) -> tensor<4x8xi32>
    %10 = "ky.reshape"(%9) : (tensor<4x8xi32>) -> tensor<32xi32>
    %11 = "ky.splat"(%0) : (!ky.ptr<f32>) -> tensor<32x!ky.ptr<f32>>
    %12 = "ky.addptr"(%11, %10) : (tensor<32x!ky.ptr<f32>>, tensor<32xi32>) -> tensor<32x!ky.ptr<f32>>
    %13 = "ky.splat"(%2) : (i32) -> tensor<32xi32>
    %14 = arith.cmpi slt, %10, %13 : tensor<32xi32>
    %15 = arith.constant 0.000000e+00 : f32
    %16 = "ky.splat"(%15) : (f32) -> tensor<32xf32>
    %17 = "ky.load"(%12, %14, %16) <{operandSegmentSizes = array<i32: 1, 1, 1>}> : (tensor<32x!ky.ptr<f32>>, tensor<32xi1>, tensor<32xf32>) -> tensor<32xf32>
    %18 = arith.cmpf olt, %17, %16 : tensor<32xf32>
    %19 = arith.select %18, %17, %16 : tensor<32xi1>, tensor<32xf32>
    %20 = arith.sitofp %10 : tensor<32xi32> to tensor<32xf32>
    %21 = arith.remf %19, %20 : tensor<32xf32>
    %22 = "ky.reduce"(%21) <{axis = 0 : i32}> ({
    ^bb0(%23 : f32, %24 : f32):
      %25 = arith.maximumf %23, %24 : f32
      "ky.yield"(%25) : (f32) -> ()
    }) : (tensor<32xf32>) -> f32
    %26 = "ky.scan"(%21) <{axis = 0 : i32}> ({
    ^bb1(%27 : f32, %28 : f32):
      %29 = arith.addf %27, %28 : f32
      "ky.yield"(%29) : (f32) -> ()
    }) : (tensor<32xf32>) -> tensor<32xf32>
    "ky.store"(%12, %26, %14) <{operandSegmentSizes = array<i32: 1, 1, 1>}> : (tensor<32x!ky.ptr<f32>>, tensor<32xf32>, tensor<32xi1>) -> ()
    %30 = "ky.atomic_rmw"(%1, %2) <{kind = "add", operandSegmentSizes = array<i32: 1, 1, 0>}> : (!ky.ptr<i32>, i32) -> i32
    %31 = "ky.atomic_cas"(%1, %2, %30) : (!ky.ptr<i32>, i32, i32) -> i32
    %32 = "ky.splat"(%15) : (f32) -> tensor<4x4xf32>
    %33 = "ky.dot"(%32, %32, %32) : (tensor<4x4xf32>, tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
    %34 = arith.extf %3 : f16 to f32
    %35 = arith.constant 0 : i32
    %36 = arith.constant 1 : i32
    %37 = scf.for %38 = %35 to %2 step %36 iter_args(%39 = %34) -> (f32) : i32 {
      %40 = arith.addf %39, %22 : f32
      scf.yield %40 : f32
    } loc("hand.py":20:5)
    %41 = arith.cmpi sgt, %4, %5 : i32
    %42 = scf.if %41 -> (f32) {
      scf.yield %37 : f32
    } else {
      scf.yield %22 : f32
    }
    %43, %44 = scf.while (%45 = %35, %46 = %42) : (i32, f32) -> (i32, f32) {
      %47 = arith.cmpi slt, %45, %2 : i32
      scf.condition(%47) %45, %46 : i32, f32
    } do {
    ^bb2(%48 : i32, %49 : f32):
      %50 = arith.addi %48, %36 : i32
      scf.yield %50, %49 : i32, f32
    } loc("hand.py":30:5)
    "ky.print"(%43, %44) <{prefix = "x"}> : (i32, f32) -> ()
    %51 = arith.cmpi ne, %43, %35 : i32
    "ky.assert"(%51) <{message = "boom"}> : (i1) -> () loc("hand.py":40:9)
    func.return
  }
}
'''


def test_hand_written_module_covers_every_ky_op():
    module = parse_module(HAND)
    names = {op.name for op in module.walk()}
    assert {op.name for op in kir.Ky.operations} <= names


def test_hand_written_canonical_text_round_trips_exactly():
    first = roundtrip(HAND)
    assert roundtrip(first) == first


def test_user_spelling_round_trips_to_a_fixed_point():
    text = '''builtin.module attributes {ky.version = "0.1"} {
  func.func @add(%x: !ky.ptr<f32>, %n: i32) {
    %pid = "ky.program_id"() <{axis = 0 : i32}> : () -> i32 loc("k.py":5:10)
    %c = arith.constant 128 : i32
    %b = arith.muli %pid, %c : i32
    %v = "ky.load"(%x) <{operandSegmentSizes = array<i32: 1, 0, 0>}> : (!ky.ptr<f32>) -> f32
    "ky.store"(%x, %v) <{operandSegmentSizes = array<i32: 1, 0, 0>}> : (!ky.ptr<f32>, f32) -> ()
    func.return
  }
}
'''
    # `ky.store` with a missing value operand is malformed; fix it and round-trip the fixed text
    text = text.replace("array<i32: 1, 0, 0>}> : (!ky.ptr<f32>, f32) -> ()", "array<i32: 1, 1, 0>}> : (!ky.ptr<f32>, f32) -> ()")
    once = roundtrip(text)
    assert roundtrip(once) == once
    assert 'loc("k.py":5:10)' in once


def test_public_exports():
    for name in ("parse_module", "print_module", "verify_module", "Ky", "PtrType", "op_location", "Arith"):
        assert hasattr(kir, name), name
    assert kir.Ky.name == "ky"


def test_op_location_reads_loc():
    from kaiyuan.ir import op_location

    module = parse_module(HAND)
    locs = {op.name: op_location(op) for op in module.walk()}
    assert locs["ky.program_id"] == "hand.py:3"
    assert locs["ky.assert"] == "hand.py:40"
    assert locs["scf.while"] == "hand.py:30"
    assert locs["ky.make_range"] is None
