"""Malformed IR text → IRParseError (KY-E110) naming the line; ill-typed IR → IRVerifyError
(KY-E111) naming the op and, when the op has one, its `loc` file:line. Every ky op's verifier
is exercised at least once."""

from __future__ import annotations

import pytest

import kaiyuan
from kaiyuan import IRParseError, IRVerifyError
from kaiyuan.ir import parse_module, verify_module


def module(body: str, params: str = "%p: !ky.ptr<f32>, %q: !ky.ptr<i32>, %n: i32, %x: f32") -> str:
    return ('builtin.module attributes {ky.version = "0.1"} {\n'
            f"  func.func @k({params}) {{\n{body}\n    func.return\n  }}\n}}\n")


# body lines are numbered from 3 (line 1: module, line 2: func)
PARSE_CASES = [
    ("undefined value", '    %a = arith.constant 1 : i32\n    %b = arith.addi %a, %zz : i32', 4),
    ("unknown op", '    %a = "ky.bogus"() : () -> i32', 3),
    ("unknown type", '    %a = arith.constant 1 : i33x', 3),
    ("truncated op", '    %v = "ky.load"(', 4),
    ("bad block label", '    %z = "ky.splat"(%x) : (f32) -> tensor<4xf32>\n'
                        '    %s = "ky.reduce"(%z) <{axis = 0 : i32}> ({\n'
                        '    ^0(%a : f32, %b : f32):\n'
                        '      "ky.yield"(%a) : (f32) -> ()\n'
                        '    }) : (tensor<4xf32>) -> f32', 5),
    ("type mismatch at use", '    %a = arith.constant 1 : i32\n    %b = arith.addf %a, %a : f32', 4),
    ("unknown ptr syntax", '    %a = "ky.splat"(%p) : (!ky.ptr<f32) -> tensor<4x!ky.ptr<f32>>', 3),
]


@pytest.mark.parametrize("body, line", [(b, ln) for _, b, ln in PARSE_CASES], ids=[c[0] for c in PARSE_CASES])
def test_malformed_text_is_an_ir_parse_error_naming_the_line(body, line):
    with pytest.raises(IRParseError) as info:
        parse_module(module(body), filename="bad.mlir")
    err = info.value
    assert err.code == "KY-E110"
    assert isinstance(err, kaiyuan.KaiyuanError)
    assert f"bad.mlir:{line}:" in str(err), str(err)


def test_parse_error_is_exported_at_top_level():
    assert kaiyuan.IRParseError is IRParseError and kaiyuan.IRVerifyError is IRVerifyError


MR = '    %r = "ky.make_range"() <{start = 0 : i32, end = 4 : i32}> : () -> tensor<4xi32>\n'
SPL = '    %t = "ky.splat"(%x) : (f32) -> tensor<4xf32>\n'
PT = '    %pt = "ky.splat"(%p) : (!ky.ptr<f32>) -> tensor<4x!ky.ptr<f32>>\n'
L = ' loc("user.py":{line}:5)'

VERIFY_CASES = [
    # (id, body, op name, words in the message)
    ("program_id axis", '    %a = "ky.program_id"() <{axis = 3 : i32}> : () -> i32' + L, "ky.program_id", ["axis"]),
    ("num_programs axis", '    %a = "ky.num_programs"() <{axis = -1 : i32}> : () -> i32' + L, "ky.num_programs", ["axis"]),
    ("make_range empty", '    %r = "ky.make_range"() <{start = 4 : i32, end = 4 : i32}> : () -> tensor<1xi32>' + L,
     "ky.make_range", ["end"]),
    ("make_range result", '    %r = "ky.make_range"() <{start = 0 : i32, end = 4 : i32}> : () -> tensor<8xi32>' + L,
     "ky.make_range", ["tensor<4xi32>"]),
    ("splat of tile", MR + '    %s = "ky.splat"(%r) : (tensor<4xi32>) -> tensor<4xi32>' + L, "ky.splat", ["scalar"]),
    ("splat element", '    %s = "ky.splat"(%n) : (i32) -> tensor<4xf32>' + L, "ky.splat", ["element"]),
    ("broadcast bad", MR + '    %b = "ky.broadcast"(%r) : (tensor<4xi32>) -> tensor<8xi32>' + L, "ky.broadcast", ["broadcast"]),
    ("broadcast rank", MR + '    %b = "ky.broadcast"(%r) : (tensor<4xi32>) -> tensor<2x4xi32>' + L, "ky.broadcast", ["rank"]),
    ("expand_dims", MR + '    %e = "ky.expand_dims"(%r) <{axis = 0 : i32}> : (tensor<4xi32>) -> tensor<4x1xi32>' + L,
     "ky.expand_dims", ["shape"]),
    ("expand_dims axis", MR + '    %e = "ky.expand_dims"(%r) <{axis = 5 : i32}> : (tensor<4xi32>) -> tensor<4x1xi32>' + L,
     "ky.expand_dims", ["axis"]),
    ("reshape", MR + '    %e = "ky.reshape"(%r) : (tensor<4xi32>) -> tensor<3xi32>' + L, "ky.reshape", ["reshape"]),
    ("trans order", MR + '    %e = "ky.reshape"(%r) : (tensor<4xi32>) -> tensor<2x2xi32>\n'
     '    %t2 = "ky.trans"(%e) <{order = array<i32: 0, 0>}> : (tensor<2x2xi32>) -> tensor<2x2xi32>' + L,
     "ky.trans", ["permutation"]),
    ("trans shape", MR + '    %e = "ky.reshape"(%r) : (tensor<4xi32>) -> tensor<1x4xi32>\n'
     '    %t2 = "ky.trans"(%e) <{order = array<i32: 1, 0>}> : (tensor<1x4xi32>) -> tensor<1x4xi32>' + L,
     "ky.trans", ["shape"]),
    ("addptr float offset", '    %a = "ky.addptr"(%p, %x) : (!ky.ptr<f32>, f32) -> !ky.ptr<f32>' + L, "ky.addptr", ["integer"]),
    ("addptr non-pointer", '    %a = "ky.addptr"(%n, %n) : (i32, i32) -> i32' + L, "ky.addptr", ["pointer"]),
    ("addptr shapes", MR + '    %a = "ky.addptr"(%p, %r) : (!ky.ptr<f32>, tensor<4xi32>) -> !ky.ptr<f32>' + L,
     "ky.addptr", ["shape"]),
    ("load result", '    %v = "ky.load"(%p) <{operandSegmentSizes = array<i32: 1, 0, 0>}> : (!ky.ptr<f32>) -> i32' + L,
     "ky.load", ["result"]),
    ("load mask", MR + PT + '    %v = "ky.load"(%pt, %n) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : '
     '(tensor<4x!ky.ptr<f32>>, i32) -> tensor<4xf32>' + L, "ky.load", ["mask"]),
    ("load other", PT + '    %v = "ky.load"(%pt, %x) <{operandSegmentSizes = array<i32: 1, 0, 1>}> : '
     '(tensor<4x!ky.ptr<f32>>, f32) -> tensor<4xf32>' + L, "ky.load", ["other"]),
    ("store value", '    "ky.store"(%p, %n) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : (!ky.ptr<f32>, i32) -> ()' + L,
     "ky.store", ["value"]),
    ("store mask", PT + SPL + '    "ky.store"(%pt, %t, %n) <{operandSegmentSizes = array<i32: 1, 1, 1>}> : '
     '(tensor<4x!ky.ptr<f32>>, tensor<4xf32>, i32) -> ()' + L, "ky.store", ["mask"]),
    ("atomic_rmw kind", '    %o = "ky.atomic_rmw"(%p, %x) <{kind = "mul", operandSegmentSizes = array<i32: 1, 1, 0>}> : '
     '(!ky.ptr<f32>, f32) -> f32' + L, "ky.atomic_rmw", ["kind"]),
    ("atomic_rmw value", '    %o = "ky.atomic_rmw"(%p, %n) <{kind = "add", operandSegmentSizes = array<i32: 1, 1, 0>}> : '
     '(!ky.ptr<f32>, i32) -> i32' + L, "ky.atomic_rmw", ["value"]),
    ("atomic_cas types", '    %o = "ky.atomic_cas"(%q, %x, %x) : (!ky.ptr<i32>, f32, f32) -> f32' + L,
     "ky.atomic_cas", ["cmp"]),
    ("dot shapes", '    %a = "ky.splat"(%x) : (f32) -> tensor<16x8xf32>\n    %b = "ky.splat"(%x) : (f32) -> tensor<4x16xf32>\n'
     '    %c = "ky.splat"(%x) : (f32) -> tensor<16x16xf32>\n'
     '    %d = "ky.dot"(%a, %b, %c) : (tensor<16x8xf32>, tensor<4x16xf32>, tensor<16x16xf32>) -> tensor<16x16xf32>' + L,
     "ky.dot", ["(16, 8)", "(4, 16)"]),
    ("dot rank", SPL + '    %d = "ky.dot"(%t, %t, %t) : (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>' + L,
     "ky.dot", ["2-D"]),
    ("dot scalar", '    %d = "ky.dot"(%x, %x, %x) : (f32, f32, f32) -> f32' + L, "ky.dot", ["tensor"]),
    ("reduce combiner types", SPL + '    %s = "ky.reduce"(%t) <{axis = 0 : i32}> ({\n    ^bb0(%a : i32, %b : i32):\n'
     '      %w = arith.addi %a, %b : i32\n      "ky.yield"(%w) : (i32) -> ()\n    }) : (tensor<4xf32>) -> f32' + L,
     "ky.reduce", ["combiner"]),
    ("reduce yield types", SPL + '    %s = "ky.reduce"(%t) <{axis = 0 : i32}> ({\n    ^bb0(%a : f32, %b : f32):\n'
     '      "ky.yield"(%n) : (i32) -> ()\n    }) : (tensor<4xf32>) -> f32' + L, "ky.reduce", ["yield"]),
    ("reduce result", SPL + '    %s = "ky.reduce"(%t) <{axis = 0 : i32}> ({\n    ^bb0(%a : f32, %b : f32):\n'
     '      "ky.yield"(%a) : (f32) -> ()\n    }) : (tensor<4xf32>) -> tensor<4xf32>' + L, "ky.reduce", ["result"]),
    ("reduce axis", SPL + '    %s = "ky.reduce"(%t) <{axis = 1 : i32}> ({\n    ^bb0(%a : f32, %b : f32):\n'
     '      "ky.yield"(%a) : (f32) -> ()\n    }) : (tensor<4xf32>) -> f32' + L, "ky.reduce", ["axis"]),
    ("scan result", SPL + '    %s = "ky.scan"(%t) <{axis = 0 : i32}> ({\n    ^bb0(%a : f32, %b : f32):\n'
     '      "ky.yield"(%a) : (f32) -> ()\n    }) : (tensor<4xf32>) -> f32' + L, "ky.scan", ["result"]),
    ("assert cond", '    "ky.assert"(%n) <{message = "m"}> : (i32) -> ()' + L, "ky.assert", ["i1"]),
    ("cmpi result shape", MR + '    %c = "arith.cmpi"(%r, %r) <{predicate = 2 : i64}> : (tensor<4xi32>, tensor<4xi32>) -> i1' + L,
     "arith.cmpi", ["tensor<4xi1>"]),
    ("cmpf operands", SPL + '    %c = "arith.cmpf"(%t, %x) <{predicate = 1 : i64}> : (tensor<4xf32>, f32) -> tensor<4xi1>' + L,
     "arith.cmpf", ["differ"]),
    ("select cond", SPL + '    %c = arith.select %n, %t, %t : i32, tensor<4xf32>' + L, "arith.select", ["condition"]),
    ("sitofp shapes", MR + '    %c = "arith.sitofp"(%r) : (tensor<4xi32>) -> f32' + L, "arith.sitofp", ["shape"]),
    ("extsi narrower", '    %c = arith.extsi %n : i32 to i8' + L, "arith.extsi", ["wider"]),
]


@pytest.mark.parametrize("body, opname, words", [c[1:] for c in VERIFY_CASES], ids=[c[0] for c in VERIFY_CASES])
def test_ill_typed_ir_is_a_verify_error_naming_op_and_location(body, opname, words):
    text = module(body.replace("{line}", "42"))
    with pytest.raises(IRVerifyError) as info:
        parse_module(text, filename="bad.mlir")
    err = info.value
    assert err.code == "KY-E111"
    msg = str(err)
    assert opname in msg, msg
    assert err.loc == "user.py:42", msg
    assert "user.py:42" in msg
    for w in words:
        assert w in msg, (w, msg)


def test_every_ky_op_verifier_is_exercised():
    from kaiyuan.ir import Ky

    covered = {c[2] for c in VERIFY_CASES}
    no_rules = {"ky.yield", "ky.print"}  # ops without a custom verifier
    assert {op.name for op in Ky.operations} - no_rules <= covered


def test_verify_error_without_loc_names_the_file():
    body = '    %a = "ky.program_id"() <{axis = 7 : i32}> : () -> i32'
    with pytest.raises(IRVerifyError) as info:
        parse_module(module(body), filename="prog.mlir")
    assert info.value.loc == "prog.mlir"
    assert "ky.program_id" in str(info.value)


def test_nested_bad_op_is_named_not_its_parent():
    body = (SPL + '    %s = "ky.reduce"(%t) <{axis = 0 : i32}> ({\n    ^bb0(%a : f32, %b : f32):\n'
            '      %v = "ky.load"(%p) <{operandSegmentSizes = array<i32: 1, 0, 0>}> : (!ky.ptr<f32>) -> i32 loc("in.py":7:1)\n'
            '      "ky.yield"(%a) : (f32) -> ()\n    }) : (tensor<4xf32>) -> f32 loc("out.py":3:1)')
    with pytest.raises(IRVerifyError) as info:
        parse_module(module(body))
    assert info.value.loc == "in.py:7"
    assert "ky.load" in str(info.value)


def test_parse_without_verify_then_verify_module():
    body = '    %a = "ky.program_id"() <{axis = 9 : i32}> : () -> i32 loc("v.py":2:1)'
    m = parse_module(module(body), verify=False)
    with pytest.raises(IRVerifyError, match="v.py:2"):
        verify_module(m)


def test_builder_constructed_ops_verify():
    """Ops built with the Python constructors (as the frontend does) pass their verifiers."""
    from xdsl.dialects.builtin import f32, i32
    from xdsl.ir import Block

    from kaiyuan.ir import ky

    blk = Block(arg_types=[ky.PtrType(f32), i32])
    p, n = blk.args
    r = ky.MakeRangeOp(0, 8)
    e = ky.ExpandDimsOp(r.result, 1)
    b = ky.BroadcastOp(e.result, [8, 4])
    t = ky.TransOp(b.result, [1, 0])
    rs = ky.ReshapeOp(t.result, [32])
    sp = ky.SplatOp(p, [32])
    ap = ky.AddPtrOp(sp.result, rs.result)
    ld = ky.LoadOp(ap.result)
    st = ky.StoreOp(ap.result, ld.result)
    pid = ky.ProgramIdOp(2)
    for op in (r, e, b, t, rs, sp, ap, ld, st, pid):
        op.verify()
    assert ld.result.type == ky.tile(f32, [32])
    assert ky.shape_of(t.result.type) == (4, 8)
