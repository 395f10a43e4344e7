"""The IR the frontend writes for simple kernels: structured control flow, inlining, constexpr
folding, Triton's typing rules, and a `loc(...)` on every op that points into this file."""

from __future__ import annotations

import inspect
import os
import re

import pytest

import kaiyuan as ky
import kaiyuan.language as kl
from kaiyuan.ir import op_location, parse_module

from ..kernel_ir import ky_ir, marker_line, op_lines, raw_ir

HERE = os.path.abspath(__file__)
F32 = {"x_ptr": "*fp32", "n": "i32"}


def count(text: str, opname: str) -> int:
    return len(op_lines(text, opname))


# ------------------------------------------------------------------------------- control flow


@ky.jit
def k_for_carried(x_ptr, n, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    acc = kl.zeros((BLOCK,), kl.float32)
    total = 0
    for i in range(n):  # <- for_carried
        acc += kl.load(x_ptr + i * BLOCK + offs)
        total += i
    kl.store(x_ptr + offs, acc + total)


def test_range_loop_becomes_scf_for_with_iter_args():
    text = ky_ir(k_for_carried, F32, {"BLOCK": 32})
    fors = op_lines(text, "scf.for")
    assert len(fors) == 1
    # both reassigned names are carried: the tile accumulator and the int counter
    m = re.search(r"iter_args\((.*?)\) -> \((.*?)\)", fors[0])
    assert m, fors[0]
    assert m.group(1).count("=") == 2
    assert sorted(t.strip() for t in m.group(2).split(",")) == ["i32", "tensor<32xf32>"]
    assert ": i32 {" in fors[0]  # induction variable type
    assert count(text, "scf.yield") == 1
    # the loop op carries the location of the `for` statement (not of its last body line)
    assert f'}} loc("{HERE}":{marker_line(HERE, "for_carried")}:' in text


@ky.jit
def k_for_i64(x_ptr, n):
    acc = 0
    for i in range(n):
        acc += i
    kl.store(x_ptr, acc.to(kl.float32))


def test_loop_bounds_of_i64_make_an_i64_loop():
    text = ky_ir(k_for_i64, {"x_ptr": "*fp32", "n": "i64"})
    assert ": i64 {" in op_lines(text, "scf.for")[0]


@ky.jit
def k_for_const_bounds(x_ptr, n):
    for i in range(2, 10, 3):
        kl.store(x_ptr + i, 1.0)


def test_range_with_constant_bounds_keeps_scf_for_without_results():
    text = ky_ir(k_for_const_bounds, F32)
    line = op_lines(text, "scf.for")[0]
    assert "iter_args" not in line and not line.lstrip().startswith("%")
    for v in ("2", "10", "3"):
        assert re.search(rf"arith\.constant {v} : i32", text)


@ky.jit
def k_if_results(x_ptr, n):
    v = kl.load(x_ptr)
    if n > 4:  # <- if_results
        v = v * 2.0
        w = 1
    else:
        v = v + 1.0
        w = 2
    kl.store(x_ptr, v + w)


def test_runtime_if_becomes_scf_if_with_results():
    text = ky_ir(k_if_results, F32)
    ifs = op_lines(text, "scf.if")
    assert len(ifs) == 1
    assert re.match(r"\s*%\d+, %\d+ = scf\.if %\d+ -> \((f32, i32|i32, f32)\)", ifs[0]), ifs[0]
    assert count(text, "scf.yield") == 2
    assert "} else {" in text
    assert f'}} loc("{HERE}":{marker_line(HERE, "if_results")}:' in text


@ky.jit
def k_if_no_else(x_ptr, n):
    v = 0.0
    if n > 4:
        v = 3.0
    kl.store(x_ptr, v)


def test_if_without_else_yields_the_value_from_before():
    text = ky_ir(k_if_no_else, F32)
    assert re.search(r"%\d+ = scf\.if %\d+ -> \(f32\)", text)


@ky.jit
def k_if_one_branch_only(x_ptr, n):
    if n > 4:
        tmp = kl.load(x_ptr)
        kl.store(x_ptr, tmp + 1.0)


def test_name_defined_in_one_branch_is_not_a_result():
    text = ky_ir(k_if_one_branch_only, F32)
    line = op_lines(text, "scf.if")[0]
    assert not line.lstrip().startswith("%")
    assert "ky.store" in text


@ky.jit
def k_constexpr_if(x_ptr, n, FLAG: kl.constexpr):
    if FLAG:
        kl.store(x_ptr, 1.0)
    else:
        kl.store(x_ptr, kl.load(x_ptr) * 3.0)


def test_if_on_constexpr_is_resolved_at_compile_time():
    t1 = ky_ir(k_constexpr_if, F32, {"FLAG": True})
    t0 = ky_ir(k_constexpr_if, F32, {"FLAG": False})
    assert "scf.if" not in t1 and "scf.if" not in t0
    assert "ky.load" not in t1 and "arith.mulf" in t0


@ky.jit
def k_while(x_ptr, n):
    i = 0
    acc = 0.0
    while i < n:  # <- while
        acc += kl.load(x_ptr + i)
        i += 1
    kl.store(x_ptr, acc)


def test_while_becomes_scf_while_with_condition():
    text = ky_ir(k_while, F32)
    assert count(text, "scf.while") == 1
    assert "scf.condition(" in text
    assert re.search(r"scf\.while \(.*\) : \((f32, i32|i32, f32)\) -> \((f32, i32|i32, f32)\)", text)
    assert f'}} loc("{HERE}":{marker_line(HERE, "while")}:' in text
    # and it round-trips as text
    assert parse_module(text) is not None


@ky.jit
def k_static_range(x_ptr, n):
    acc = kl.load(x_ptr)
    for i in kl.static_range(4):
        acc += kl.load(x_ptr + i)
    kl.store(x_ptr, acc)


def test_static_range_unrolls():
    text = ky_ir(k_static_range, F32)
    assert "scf.for" not in text
    assert count(text, "ky.load") == 5
    for i in range(1, 4):
        assert re.search(rf"arith\.constant {i} : i32", text)


@ky.jit
def k_nested_loops(x_ptr, n):
    acc = 0.0
    for i in range(n):
        for j in range(i):
            if j > 2:
                acc += 1.0
    kl.store(x_ptr, acc)


def test_nested_loops_and_if():
    text = ky_ir(k_nested_loops, F32)
    assert count(text, "scf.for") == 2 and count(text, "scf.if") == 1
    assert parse_module(text) is not None


# ------------------------------------------------------------------------------------ inlining


@ky.jit
def helper_scale(p, factor, OFFSET: kl.constexpr = 1):
    return kl.load(p + OFFSET) * factor


@ky.jit
def helper_pair(a, b):
    return a + b, a - b


@ky.jit
def k_calls_helpers(x_ptr, n):
    v = helper_scale(x_ptr, 2.0)
    s, d = helper_pair(v, 1.0)
    kl.store(x_ptr, s * d)


def test_jit_callees_are_inlined():
    text = ky_ir(k_calls_helpers, F32)
    assert "func.call" not in text
    assert count(text, "func.func") == 1
    assert count(text, "ky.load") == 1
    assert "arith.subf" in text and "arith.addf" in text
    # the helper's ops carry the helper's lines (also in this file)
    src, first = inspect.getsourcelines(helper_scale.fn)
    lines = {int(m) for m in re.findall(rf'loc\("{re.escape(HERE)}":(\d+):', text)}
    assert lines & set(range(first, first + len(src)))


def combine_max(a, b):
    return kl.maximum(a, b)


combine_max_jit = ky.jit(combine_max)


@ky.jit
def k_custom_reduce(x_ptr, n):
    v = kl.load(x_ptr + kl.arange(0, 16))
    kl.store(x_ptr, kl.reduce(v, 0, combine_max_jit))


def test_custom_reduce_inlines_the_combiner():
    text = ky_ir(k_custom_reduce, F32)
    assert count(text, "ky.reduce") == 1
    assert "arith.maximumf" in text and "func.call" not in text


# ----------------------------------------------------------------------------- constexprs


@ky.jit
def k_constexpr_fold(x_ptr, n, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK * 2)
    kl.store(x_ptr + offs, kl.full((BLOCK * 2,), BLOCK // 4 + 1, kl.float32))


def test_constexpr_arithmetic_is_folded():
    text = ky_ir(k_constexpr_fold, F32, {"BLOCK": 64})
    assert "arith.muli" not in text and "arith.divsi" not in text and "arith.addi" not in text
    assert "end = 128 : i32" in text
    assert "arith.constant 1.700000e+01 : f32" in text


@ky.jit
def k_cdiv(x_ptr, n, N: kl.constexpr, B: kl.constexpr):
    kl.store(x_ptr, kl.cdiv(N, B) + 0.0)
    kl.store(x_ptr + 1, (kl.cdiv(n, B)).to(kl.float32))


def test_cdiv_folds_on_constexprs_and_emits_ir_on_runtime_values():
    text = ky_ir(k_cdiv, F32, {"N": 100, "B": 16})
    assert "arith.constant 7.000000e+00 : f32" in text
    assert "arith.divsi" in text


# ------------------------------------------------------------------------------------- typing


@ky.jit
def k_fp16_weak(x_ptr, n):
    offs = kl.arange(0, 8)
    x = kl.load(x_ptr + offs)
    kl.store(x_ptr + offs, x * 2.5 + 1)


def test_python_literals_adopt_the_tile_type():
    text = ky_ir(k_fp16_weak, {"x_ptr": "*fp16", "n": "i32"})
    assert "f32" not in text.replace("ky.ptr<f16>", "")
    assert "arith.mulf" in op_lines(text, "arith.mulf")[0] and "tensor<8xf16>" in op_lines(text, "arith.mulf")[0]
    assert "arith.constant 2.500000e+00 : f16" in text
    assert "arith.extf" not in text and "arith.truncf" not in text


@ky.jit
def k_i8_weak(x_ptr, n):
    v = kl.load(x_ptr)
    kl.store(x_ptr, v + 3)


def test_int_literal_with_i8_stays_i8():
    text = ky_ir(k_i8_weak, {"x_ptr": "*i8", "n": "i32"})
    assert "arith.addi" in text and ": i8" in op_lines(text, "arith.addi")[0]
    assert "arith.extsi" not in text


@ky.jit
def k_mixed(x_ptr, i_ptr, n):
    offs = kl.arange(0, 4)
    kl.store(x_ptr + offs, kl.load(i_ptr + offs) + kl.load(x_ptr + offs))


def test_i32_plus_f32_converts_with_sitofp_then_addf():
    text = ky_ir(k_mixed, {"x_ptr": "*fp32", "i_ptr": "*i32", "n": "i32"})
    assert "arith.sitofp" in text and "tensor<4xi32> to tensor<4xf32>" in op_lines(text, "arith.sitofp")[0]
    assert "arith.addf" in text and "arith.addi" not in text.split("ky.load")[-1]


@ky.jit
def k_int_div(x_ptr, i_ptr, n):
    a = kl.load(i_ptr)
    kl.store(x_ptr, a / n)
    kl.store(i_ptr, a // n)
    kl.store(i_ptr + 1, a % n)


def test_integer_true_division_is_float_division():
    text = ky_ir(k_int_div, {"x_ptr": "*fp32", "i_ptr": "*i32", "n": "i32"})
    assert "arith.divf" in text and count(text, "arith.sitofp") == 2
    assert "arith.divsi" in text and "arith.remsi" in text


@ky.jit
def k_u8(u_ptr, o_ptr, n):
    offs = kl.arange(0, 16)
    a = kl.load(u_ptr + offs)
    kl.store(o_ptr + offs, (a < 7).to(kl.int32))
    kl.store(u_ptr + offs, a // 3 + (a >> 1))
    kl.store(o_ptr + offs, a.to(kl.int32) + kl.max(a, axis=0))


def test_uint8_uses_unsigned_predicates_and_ops():
    text = ky_ir(k_u8, {"u_ptr": "*u8", "o_ptr": "*i32", "n": "i32"})
    assert "arith.cmpi ult" in text and "arith.cmpi slt" not in text
    assert "arith.divui" in text and "arith.shrui" in text and "arith.divsi" not in text
    assert "arith.extui" in text and "arith.extsi" not in text
    assert "arith.maxui" in text


@ky.jit
def k_bf16_fp16(a_ptr, b_ptr, n):
    kl.store(a_ptr, (kl.load(a_ptr) + kl.load(b_ptr)).to(kl.bfloat16))


def test_fp16_plus_bf16_computes_in_fp32():
    text = ky_ir(k_bf16_fp16, {"a_ptr": "*bf16", "b_ptr": "*fp16", "n": "i32"})
    assert ": f32" in op_lines(text, "arith.addf")[0]
    assert count(text, "arith.extf") == 2 and "arith.truncf" in text


@ky.jit
def k_where_minmax(x_ptr, n):
    offs = kl.arange(0, 8)
    x = kl.load(x_ptr + offs)
    y = kl.where(offs < n, x, 0.0)
    kl.store(x_ptr + offs, kl.minimum(kl.maximum(y, -1.0), 1.0) - x)


def test_where_and_min_max():
    text = ky_ir(k_where_minmax, F32)
    assert "arith.select" in text and "arith.maximumf" in text and "arith.minimumf" in text
    assert re.search(r"arith\.select %\d+, %\d+, %\d+ : tensor<8xi1>, tensor<8xf32>", text)


@ky.jit
def k_broadcast_2d(x_ptr, n):
    r = kl.arange(0, 4)
    c = kl.arange(0, 8)
    offs = r[:, None] * 8 + c[None, :]
    kl.store(x_ptr + offs, kl.sum(kl.load(x_ptr + offs), axis=1)[:, None] + 0.0 * offs)


def test_broadcasting_inserts_expand_dims_and_broadcast():
    text = ky_ir(k_broadcast_2d, F32)
    assert count(text, "ky.expand_dims") >= 2
    assert "tensor<4x1xi32>) -> tensor<4x8xi32>" in text
    assert "tensor<1x8xi32>) -> tensor<4x8xi32>" in text
    assert '"ky.reduce"' in text and "(tensor<4x8xf32>) -> tensor<4xf32>" in text


@ky.jit
def k_dot_fp16(a_ptr, c_ptr, n):
    r = kl.arange(0, 16)
    offs = r[:, None] * 16 + r[None, :]
    a = kl.load(a_ptr + offs)
    kl.store(c_ptr + offs, kl.dot(a, a))


def test_dot_fp16_accumulates_in_fp32():
    text = ky_ir(k_dot_fp16, {"a_ptr": "*fp16", "c_ptr": "*fp32", "n": "i32"})
    line = op_lines(text, "ky.dot")[0]
    assert "(tensor<16x16xf16>, tensor<16x16xf16>, tensor<16x16xf32>) -> tensor<16x16xf32>" in line


@ky.jit
def k_atomics(x_ptr, u_ptr, n):
    offs = kl.arange(0, 4)
    kl.atomic_add(x_ptr + offs, 1.0, mask=offs < n)
    kl.atomic_max(u_ptr + offs, 3)
    kl.atomic_cas(u_ptr, 0, 1)
    kl.atomic_xchg(u_ptr, 5)


def test_atomics_pick_kinds_by_element_type():
    text = ky_ir(k_atomics, {"x_ptr": "*fp32", "u_ptr": "*u32", "n": "i32"})
    assert 'kind = "fadd"' in text and 'kind = "umax"' in text and 'kind = "xchg"' in text
    assert count(text, "ky.atomic_cas") == 1
    assert "operandSegmentSizes = array<i32: 1, 1, 1>" in op_lines(text, "ky.atomic_rmw")[0]


@ky.jit
def k_argmax_cumsum(x_ptr, i_ptr, n):
    offs = kl.arange(0, 16)
    x = kl.load(x_ptr + offs)
    kl.store(i_ptr, kl.argmax(x, axis=0))
    kl.store(x_ptr + offs, kl.cumsum(x, axis=0))


def test_argmax_is_a_two_operand_reduce_and_cumsum_a_scan():
    text = ky_ir(k_argmax_cumsum, {"x_ptr": "*fp32", "i_ptr": "*i32", "n": "i32"})
    red = [ln for ln in text.splitlines() if "-> (f32, i32)" in ln and "}) :" in ln]
    assert red, text
    assert count(text, "ky.scan") == 1


@ky.jit
def k_unary(x_ptr, i_ptr, n):
    v = kl.load(x_ptr)
    i = kl.load(i_ptr)
    kl.store(x_ptr, -v + kl.exp(v) + kl.sqrt(i))
    kl.store(i_ptr, ~i + -i)


def test_unary_ops():
    text = ky_ir(k_unary, {"x_ptr": "*fp32", "i_ptr": "*i32", "n": "i32"})
    assert "arith.negf" in text and "math.exp" in text and "math.sqrt" in text
    assert "arith.xori" in text and "arith.subi" in text
    assert "arith.sitofp" in text  # sqrt of an int converts to fp32


# --------------------------------------------------------------------------------- locations


KERNELS = [
    (k_for_carried, F32, {"BLOCK": 32}),
    (k_if_results, F32, {}),
    (k_while, F32, {}),
    (k_static_range, F32, {}),
    (k_nested_loops, F32, {}),
    (k_calls_helpers, F32, {}),
    (k_broadcast_2d, F32, {}),
    (k_argmax_cumsum, {"x_ptr": "*fp32", "i_ptr": "*i32", "n": "i32"}, {}),
    (k_atomics, {"x_ptr": "*fp32", "u_ptr": "*u32", "n": "i32"}, {}),
]


@pytest.mark.parametrize("kernel, sig, consts", KERNELS, ids=[k[0].name for k in KERNELS])
@pytest.mark.parametrize("stage", ["raw", "simplified"])
def test_every_op_has_a_location_in_this_file(kernel, sig, consts, stage):
    text = raw_ir(kernel, sig, consts) if stage == "raw" else ky_ir(kernel, sig, consts)
    module = parse_module(text)
    _, first = inspect.getsourcelines(k_for_carried.fn)
    last = len(open(HERE).read().splitlines())
    for op in module.walk():
        if op is module:
            continue
        loc = op_location(op)
        assert loc is not None, f"{op.name} has no location"
        path, line = loc.rsplit(":", 1)
        assert path == HERE, loc
        assert 1 <= int(line) <= last


def test_ops_of_a_statement_carry_its_line():
    text = ky_ir(k_if_results, F32)
    src, first = inspect.getsourcelines(k_if_results.fn)
    load_line = first + 2  # first is the decorator line
    assert f'loc("{HERE}":{load_line}:' in op_lines(text, "ky.load")[0]
    store_line = first + len(src) - 1
    assert f'loc("{HERE}":{store_line}:' in op_lines(text, "ky.store")[0]


@ky.jit
def k_python_builtins(x_ptr, n):
    v = kl.load(x_ptr)
    kl.store(x_ptr, min(v, 2.0) + max(v, n) + float(n) + abs(v))


def test_python_min_max_float_abs_on_runtime_values():
    text = ky_ir(k_python_builtins, F32)
    assert "arith.minimumf" in text and "arith.maximumf" in text and "math.absf" in text
    assert "arith.sitofp" in text


@ky.jit
def k_pointer_carried(x_ptr, n):
    p = x_ptr
    ps = x_ptr + kl.arange(0, 4)
    for i in range(n):
        p += 1
        ps += 4
    kl.store(p, 1.0)
    kl.store(ps, 2.0)


def test_pointers_and_pointer_tiles_can_be_loop_carried():
    text = ky_ir(k_pointer_carried, F32)
    line = op_lines(text, "scf.for")[0]
    assert "!ky.ptr<f32>" in line and "tensor<4x!ky.ptr<f32>>" in line


@ky.jit
def k_carried_type_widens(x_ptr, n):
    acc = 0
    for i in range(n):
        acc = acc + kl.load(x_ptr + kl.arange(0, 4))
    kl.store(x_ptr + kl.arange(0, 4), acc)


def test_loop_carried_scalar_int_that_becomes_a_float_tile_settles():
    text = ky_ir(k_carried_type_widens, F32)
    assert "iter_args" in op_lines(text, "scf.for")[0]
    assert "-> (tensor<4xf32>)" in op_lines(text, "scf.for")[0]
    assert "arith.sitofp" in text  # the int init converted before the loop
