"""simplify (CSE + DCE) as IR text in → IR text out."""

from __future__ import annotations

from kaiyuan.compiler.passes import simplify
from kaiyuan.ir import parse_module, print_module


def run(body: str, params: str = "%p: !ky.ptr<f32>, %n: i32") -> str:
    text = ('builtin.module attributes {ky.version = "0.1"} {\n'
            f"  func.func @k({params}) {{\n{body}\n    func.return\n  }}\n}}\n")
    return print_module(simplify(parse_module(text)))


def expected(body: str, params: str = "%p: !ky.ptr<f32>, %n: i32") -> str:
    """Printed module (xDSL keeps the parsed value names as hints)."""
    return ('builtin.module attributes {ky.version = "0.1"} {\n'
            f"  func.func @k({params}) {{\n{body}\n    func.return\n  }}\n}}\n")


def test_cse_merges_duplicate_constants_and_splats():
    out = run('''    %a = arith.constant 2.0 : f32
    %b = arith.constant 2.0 : f32
    %sa = "ky.splat"(%a) : (f32) -> tensor<4xf32>
    %sb = "ky.splat"(%b) : (f32) -> tensor<4xf32>
    %s = arith.addf %sa, %sb : tensor<4xf32>
    %pt = "ky.splat"(%p) : (!ky.ptr<f32>) -> tensor<4x!ky.ptr<f32>>
    %r = "ky.make_range"() <{start = 0 : i32, end = 4 : i32}> : () -> tensor<4xi32>
    %q = "ky.addptr"(%pt, %r) : (tensor<4x!ky.ptr<f32>>, tensor<4xi32>) -> tensor<4x!ky.ptr<f32>>
    "ky.store"(%q, %s) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : (tensor<4x!ky.ptr<f32>>, tensor<4xf32>) -> ()''')
    assert out == expected('''    %a = arith.constant 2.000000e+00 : f32
    %sa = "ky.splat"(%a) : (f32) -> tensor<4xf32>
    %s = arith.addf %sa, %sa : tensor<4xf32>
    %pt = "ky.splat"(%p) : (!ky.ptr<f32>) -> tensor<4x!ky.ptr<f32>>
    %r = "ky.make_range"() <{start = 0 : i32, end = 4 : i32}> : () -> tensor<4xi32>
    %q = "ky.addptr"(%pt, %r) : (tensor<4x!ky.ptr<f32>>, tensor<4xi32>) -> tensor<4x!ky.ptr<f32>>
    "ky.store"(%q, %s) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : (tensor<4x!ky.ptr<f32>>, tensor<4xf32>) -> ()''')


def test_cse_keeps_constants_of_different_types_apart():
    out = run('''    %a = arith.constant 1 : i32
    %b = arith.constant 1 : i64
    %c = arith.constant 1 : i32
    %d = arith.addi %a, %c : i32
    %q = "ky.addptr"(%p, %d) : (!ky.ptr<f32>, i32) -> !ky.ptr<f32>
    %e = "ky.addptr"(%q, %b) : (!ky.ptr<f32>, i64) -> !ky.ptr<f32>
    %v = "ky.load"(%e) <{operandSegmentSizes = array<i32: 1, 0, 0>}> : (!ky.ptr<f32>) -> f32
    "ky.store"(%p, %v) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : (!ky.ptr<f32>, f32) -> ()''')
    assert out.count("arith.constant 1 : i32") == 1 and out.count("arith.constant 1 : i64") == 1


def test_dce_drops_unused_pure_ops_and_keeps_loads_and_stores():
    out = run('''    %a = arith.constant 3 : i32
    %unused = arith.muli %a, %n : i32
    %r = "ky.make_range"() <{start = 0 : i32, end = 8 : i32}> : () -> tensor<8xi32>
    %v = "ky.load"(%p) <{operandSegmentSizes = array<i32: 1, 0, 0>}> : (!ky.ptr<f32>) -> f32
    %pid = "ky.program_id"() <{axis = 0 : i32}> : () -> i32
    %q = "ky.addptr"(%p, %pid) : (!ky.ptr<f32>, i32) -> !ky.ptr<f32>
    %x = arith.constant 1.0 : f32
    "ky.store"(%q, %x) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : (!ky.ptr<f32>, f32) -> ()''')
    assert out == expected('''    %v = "ky.load"(%p) <{operandSegmentSizes = array<i32: 1, 0, 0>}> : (!ky.ptr<f32>) -> f32
    %pid = "ky.program_id"() <{axis = 0 : i32}> : () -> i32
    %q = "ky.addptr"(%p, %pid) : (!ky.ptr<f32>, i32) -> !ky.ptr<f32>
    %x = arith.constant 1.000000e+00 : f32
    "ky.store"(%q, %x) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : (!ky.ptr<f32>, f32) -> ()''')


def test_loads_are_not_merged_and_atomics_prints_asserts_survive():
    out = run('''    %v = "ky.load"(%p) <{operandSegmentSizes = array<i32: 1, 0, 0>}> : (!ky.ptr<f32>) -> f32
    %w = "ky.load"(%p) <{operandSegmentSizes = array<i32: 1, 0, 0>}> : (!ky.ptr<f32>) -> f32
    %o = "ky.atomic_rmw"(%p, %v) <{kind = "fadd", operandSegmentSizes = array<i32: 1, 1, 0>}> : (!ky.ptr<f32>, f32) -> f32
    %c = "ky.atomic_cas"(%p, %v, %w) : (!ky.ptr<f32>, f32, f32) -> f32
    "ky.print"(%n) <{prefix = "n"}> : (i32) -> ()
    %t = arith.constant true
    "ky.assert"(%t) <{message = "m"}> : (i1) -> ()''')
    assert out.count('"ky.load"') == 2
    for op in ("ky.atomic_rmw", "ky.atomic_cas", "ky.print", "ky.assert"):
        assert op in out


def test_cse_and_dce_inside_loop_bodies():
    out = run('''    %c0 = arith.constant 0 : i32
    %c1 = arith.constant 1 : i32
    %z = arith.constant 0.0 : f32
    %r = scf.for %i = %c0 to %n step %c1 iter_args(%acc = %z) -> (f32) : i32 {
      %a = arith.constant 2.0 : f32
      %b = arith.constant 2.0 : f32
      %dead = arith.mulf %a, %b : f32
      %s = arith.addf %acc, %a : f32
      %t = arith.addf %s, %b : f32
      scf.yield %t : f32
    }
    "ky.store"(%p, %r) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : (!ky.ptr<f32>, f32) -> ()''')
    body = out.split("scf.for")[1]
    assert body.count("arith.constant 2.000000e+00") == 1
    assert "arith.mulf" not in out


def test_dead_pure_loop_is_removed_but_loop_with_store_kept():
    out = run('''    %c0 = arith.constant 0 : i32
    %c1 = arith.constant 1 : i32
    %z = arith.constant 0.0 : f32
    %r = scf.for %i = %c0 to %n step %c1 iter_args(%acc = %z) -> (f32) : i32 {
      %s = arith.addf %acc, %acc : f32
      scf.yield %s : f32
    }
    scf.for %j = %c0 to %n step %c1 : i32 {
      "ky.store"(%p, %z) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : (!ky.ptr<f32>, f32) -> ()
    }''')
    assert out.count("scf.for") == 1 and "ky.store" in out
    assert "iter_args" not in out


def test_simplify_is_idempotent_on_frontend_output():
    import kaiyuan as ky
    import kaiyuan.language as kl

    from ..kernel_ir import raw_ir

    @ky.jit
    def k(x_ptr, n, B: kl.constexpr):
        o = kl.arange(0, B)
        a = kl.load(x_ptr + o, mask=o < n, other=0.0)
        b = kl.load(x_ptr + o, mask=o < n, other=0.0)
        unused = a * 3.0  # noqa: F841
        kl.store(x_ptr + o, a + b, mask=o < n)

    text = raw_ir(k, {"x_ptr": "*fp32", "n": "i32"}, {"B": 8})
    once = print_module(simplify(parse_module(text)))
    assert print_module(simplify(parse_module(once))) == once
    assert once.count('"ky.make_range"') == 1 and once.count("arith.cmpi") == 1
    assert once.count('"ky.load"') == 2 and "arith.mulf" not in once
    assert len(once) < len(text)
