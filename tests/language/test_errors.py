"""Frontend errors: every rule violation is a CompilationError (KY-E100) or a subclass whose
message names this test file and the exact line of the offending statement (`# <- marker`)."""

from __future__ import annotations

import os

import pytest

import kaiyuan as ky
import kaiyuan.language as kl
from kaiyuan import CompilationError, ConstexprError

from ..kernel_ir import ky_ir, marker_line

HERE = os.path.abspath(__file__)
PF = {"x_ptr": "*fp32", "n": "i32"}


def plain_python_helper(v):
    return v * 2


@ky.jit
def k_break(x_ptr, n):
    for i in range(n):
        break  # <- break
    kl.store(x_ptr, 1.0)


@ky.jit
def k_continue(x_ptr, n):
    for i in range(n):
        continue  # <- continue


@ky.jit
def k_try(x_ptr, n):
    try:  # <- try
        kl.store(x_ptr, 1.0)
    except Exception:
        pass


@ky.jit
def k_lambda(x_ptr, n):
    f = lambda v: v + 1  # <- lambda  # noqa: E731
    kl.store(x_ptr, f(1.0))


@ky.jit
def k_with(x_ptr, n):
    with open("x"):  # <- with
        pass


@ky.jit
def k_listcomp(x_ptr, n):
    xs = [kl.load(x_ptr + i) for i in range(4)]  # <- listcomp
    kl.store(x_ptr, xs[0])


@ky.jit
def k_return_in_loop(x_ptr, n):
    for i in range(n):
        kl.store(x_ptr + i, 1.0)
        return  # <- return_in_loop


@ky.jit
def k_return_in_while(x_ptr, n):
    i = 0
    while i < n:
        i += 1
        return  # <- return_in_while


@ky.jit
def k_return_in_if(x_ptr, n):
    if n > 3:
        return  # <- return_in_if
    kl.store(x_ptr, 1.0)


@ky.jit
def k_runtime_arange(x_ptr, n):
    offs = kl.arange(0, n)  # <- runtime_arange
    kl.store(x_ptr + offs, 1.0)


@ky.jit
def k_runtime_zeros(x_ptr, n):
    z = kl.zeros((n,), kl.float32)  # <- runtime_zeros
    kl.store(x_ptr, kl.sum(z))


@ky.jit
def k_python_fn(x_ptr, n):
    v = kl.load(x_ptr)
    kl.store(x_ptr, plain_python_helper(v))  # <- python_fn


@ky.jit
def k_unknown_name(x_ptr, n):
    v = kl.load(x_ptr)
    kl.store(x_ptr, v + not_defined_anywhere)  # <- unknown_name  # noqa: F821


@ky.jit
def k_unknown_attr(x_ptr, n):
    v = kl.no_such_builtin(x_ptr)  # <- unknown_attr
    kl.store(x_ptr, v)


@ky.jit
def k_broadcast(x_ptr, n):
    a = kl.arange(0, 16)
    b = kl.arange(0, 8)
    kl.store(x_ptr + a, (a + b).to(kl.float32))  # <- broadcast


@ky.jit
def k_dot_shapes(x_ptr, n):
    a = kl.zeros((16, 8), kl.float32)
    b = kl.zeros((16, 16), kl.float32)
    c = kl.dot(a, b)  # <- dot_shapes
    kl.store(x_ptr, kl.sum(c))


@ky.jit
def k_dot_rank(x_ptr, n):
    a = kl.zeros((16,), kl.float32)
    c = kl.dot(a, a)  # <- dot_rank
    kl.store(x_ptr, kl.sum(c))


@ky.jit
def k_load_non_pointer(x_ptr, n):
    v = kl.load(n)  # <- load_non_pointer
    kl.store(x_ptr, v)


@ky.jit
def k_store_non_pointer(x_ptr, n):
    kl.store(n, 1.0)  # <- store_non_pointer


@ky.jit
def k_if_on_tile(x_ptr, n):
    offs = kl.arange(0, 16)
    if offs < n:  # <- if_on_tile
        kl.store(x_ptr + offs, 1.0)


@ky.jit
def k_while_on_tile(x_ptr, n):
    offs = kl.arange(0, 16)
    while offs < n:  # <- while_on_tile
        offs += 1


@ky.jit
def k_pointer_becomes_int(x_ptr, n):
    p = x_ptr
    for i in range(n):
        p = i  # <- pointer_becomes_int
    kl.store(x_ptr, 1.0)


@ky.jit
def k_if_pointer_vs_int(x_ptr, n):
    p = x_ptr
    if n > 2:
        p = n
    kl.store(x_ptr, 1.0)  # <- if_pointer_vs_int


@ky.jit
def k_returns_value(x_ptr, n):
    v = kl.load(x_ptr)
    return v  # <- returns_value


@ky.jit
def k_pointer_mul(x_ptr, n):
    q = x_ptr * 2  # <- pointer_mul
    kl.store(q, 1.0)


@ky.jit
def k_float_bitand(x_ptr, n):
    v = kl.load(x_ptr)
    kl.store(x_ptr, v & v)  # <- float_bitand


@ky.jit
def k_static_assert(x_ptr, n, B: kl.constexpr):
    kl.static_assert(B % 16 == 0, "B must be a multiple of 16")  # <- static_assert
    kl.store(x_ptr, 1.0)


@ky.jit
def k_assert_constexpr(x_ptr, n, B: kl.constexpr):
    assert B > 100, "B too small"  # <- assert_constexpr
    kl.store(x_ptr, 1.0)


@ky.jit
def k_for_else(x_ptr, n):
    for i in range(n):  # <- for_else
        pass
    else:
        pass


@ky.jit
def k_bad_range_step(x_ptr, n):
    for i in range(0, n, -1):  # <- bad_range_step
        pass


@ky.jit
def k_loop_over_list(x_ptr, n):
    for i in [1, 2]:  # <- loop_over_list
        pass


@ky.jit
def k_subscript_store(x_ptr, n):
    v = kl.zeros((4,), kl.float32)
    v[0] = 1.0  # <- subscript_store


@ky.jit
def k_bad_index(x_ptr, n):
    v = kl.zeros((4,), kl.float32)
    kl.store(x_ptr, v[1])  # <- bad_index


@ky.jit
def k_reshape_bad(x_ptr, n):
    v = kl.zeros((16,), kl.float32)
    w = kl.reshape(v, (3, 5))  # <- reshape_bad
    kl.store(x_ptr, kl.sum(w))


@ky.jit
def k_program_id_axis(x_ptr, n):
    pid = kl.program_id(3)  # <- program_id_axis
    kl.store(x_ptr + pid, 1.0)


@ky.jit
def k_cast_pointer(x_ptr, n):
    q = x_ptr.to(kl.int64)  # <- cast_pointer
    kl.store(x_ptr, 1.0)


@ky.jit
def k_global_statement(x_ptr, n):
    global SOMETHING  # <- global_statement
    kl.store(x_ptr, 1.0)


@ky.jit
def k_nested_def(x_ptr, n):
    def inner(v):  # <- nested_def
        return v
    kl.store(x_ptr, 1.0)


@ky.jit
def jit_helper_bad(p):
    kl.store(p, kl.load(p) & 1.5)  # <- helper_bad


@ky.jit
def k_calls_bad_helper(x_ptr, n):
    jit_helper_bad(x_ptr)


@ky.jit
def k_helper_bad_args(x_ptr, n):
    jit_helper_bad(x_ptr, n, n)  # <- helper_bad_args


@ky.jit
def k_static_assert_runtime(x_ptr, n):
    v = kl.load(x_ptr)
    kl.static_assert(v > 0)  # <- static_assert_runtime


CASES = [
    # (kernel, marker, error class, words the message must contain)
    (k_break, "break", CompilationError, ["break"]),
    (k_continue, "continue", CompilationError, ["continue"]),
    (k_try, "try", CompilationError, ["Try"]),
    (k_lambda, "lambda", CompilationError, ["Lambda"]),
    (k_with, "with", CompilationError, ["With"]),
    (k_listcomp, "listcomp", CompilationError, ["ListComp"]),
    (k_return_in_loop, "return_in_loop", CompilationError, ["return", "loop"]),
    (k_return_in_while, "return_in_while", CompilationError, ["return", "loop"]),
    (k_return_in_if, "return_in_if", CompilationError, ["return", "if"]),
    (k_runtime_arange, "runtime_arange", CompilationError, ["constexpr"]),
    (k_runtime_zeros, "runtime_zeros", CompilationError, ["constexpr"]),
    (k_python_fn, "python_fn", CompilationError, ["plain_python_helper", "jit"]),
    (k_unknown_name, "unknown_name", CompilationError, ["not_defined_anywhere"]),
    (k_unknown_attr, "unknown_attr", CompilationError, ["no_such_builtin"]),
    (k_broadcast, "broadcast", CompilationError, ["16", "8", "broadcast"]),
    (k_dot_shapes, "dot_shapes", CompilationError, ["dot", "[16, 8]", "[16, 16]"]),
    (k_dot_rank, "dot_rank", CompilationError, ["dot", "2-D"]),
    (k_load_non_pointer, "load_non_pointer", CompilationError, ["load", "pointer"]),
    (k_store_non_pointer, "store_non_pointer", CompilationError, ["store", "pointer"]),
    (k_if_on_tile, "if_on_tile", CompilationError, ["scalar", "tile"]),
    (k_while_on_tile, "while_on_tile", CompilationError, ["scalar", "tile"]),
    (k_pointer_becomes_int, "pointer_becomes_int", CompilationError, ["`p`"]),
    (k_returns_value, "returns_value", CompilationError, ["return"]),
    (k_pointer_mul, "pointer_mul", CompilationError, ["pointer"]),
    (k_float_bitand, "float_bitand", CompilationError, ["floating"]),
    (k_static_assert, "static_assert", CompilationError, ["B must be a multiple of 16"]),
    (k_assert_constexpr, "assert_constexpr", CompilationError, ["B too small"]),
    (k_for_else, "for_else", CompilationError, ["else"]),
    (k_bad_range_step, "bad_range_step", CompilationError, ["step"]),
    (k_loop_over_list, "loop_over_list", CompilationError, ["range"]),
    (k_subscript_store, "subscript_store", CompilationError, ["kl.store"]),
    (k_bad_index, "bad_index", CompilationError, ["index"]),
    (k_reshape_bad, "reshape_bad", CompilationError, ["reshape", "[3, 5]"]),
    (k_program_id_axis, "program_id_axis", CompilationError, ["axis"]),
    (k_cast_pointer, "cast_pointer", CompilationError, ["cast"]),
    (k_global_statement, "global_statement", CompilationError, ["Global"]),
    (k_nested_def, "nested_def", CompilationError, ["FunctionDef"]),
    (k_calls_bad_helper, "helper_bad", CompilationError, ["floating"]),
    (k_helper_bad_args, "helper_bad_args", CompilationError, ["jit_helper_bad"]),
]


def _compile(kernel):
    consts = {"B": 8} if "B" in kernel.arg_names else {}
    return ky_ir(kernel, PF, consts)


@pytest.mark.parametrize("kernel, marker, cls, words", CASES, ids=[c[1] for c in CASES])
def test_error_names_file_and_exact_line(kernel, marker, cls, words):
    with pytest.raises(cls) as info:
        _compile(kernel)
    err = info.value
    assert err.code.startswith("KY-E10"), err.code
    text = str(err)
    line = marker_line(HERE, marker)
    assert f"{HERE}:{line}:" in text or f"{os.path.basename(HERE)}:{line}:" in text, text
    assert err.loc is not None and err.loc.endswith(f":{line}"), (err.loc, line)
    for w in words:
        assert w in text, (w, text)


def test_if_with_pointer_and_int_branches_is_an_error_at_the_if():
    # `p` is a pointer in one branch and an int in the other: it cannot be an scf.if result.
    with pytest.raises(CompilationError) as info:
        _compile(k_if_pointer_vs_int)
    assert "`p`" in str(info.value)
    assert HERE in str(info.value)


def test_runtime_arange_hint_mentions_constexpr():
    with pytest.raises(CompilationError) as info:
        _compile(k_runtime_arange)
    err = info.value
    assert isinstance(err, ConstexprError) or "constexpr" in (err.hint or "")


def test_error_codes_are_stable():
    assert CompilationError.code == "KY-E100"
    assert ConstexprError.code == "KY-E101"
    assert issubclass(ConstexprError, CompilationError)


def test_language_functions_outside_a_kernel():
    with pytest.raises(CompilationError, match="inside a @ky.jit kernel"):
        kl.program_id(0)


def test_python_bool_of_a_runtime_value_is_a_constexpr_error_at_its_line():
    with pytest.raises(ConstexprError) as info:
        _compile(k_static_assert_runtime)
    assert info.value.code == "KY-E101"
    assert f"{HERE}:{marker_line(HERE, 'static_assert_runtime')}:" in str(info.value)


def test_runtime_arange_is_a_constexpr_error():
    with pytest.raises(ConstexprError):
        _compile(k_runtime_arange)


def test_bool_of_a_runtime_scalar_becomes_a_cast_not_an_error():
    @ky.jit
    def k(x_ptr, n):
        v = kl.load(x_ptr)
        kl.store(x_ptr, 1.0 if bool(v > 0) and n > 1 else 2.0)

    text = ky_ir(k, PF)
    assert "arith.select" in text and "arith.andi" in text
