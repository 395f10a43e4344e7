"""The shared SIMT emitter (kaiyuan.compiler.simt) through the OpenCL dialect: what the source of a
small kernel contains. No OpenCL device is needed: these read text."""

import pytest

import kaiyuan as ky
from kaiyuan.backends.opencl.dialect import OpenCLDialect
from kaiyuan.compiler.simt import check_supported, emit_simt

from .kernels import add_kernel, atomic_kernel, dot_kernel, func_of, softmax_kernel

F32_PTRS = {"x": "*fp32", "y": "*fp32", "out": "*fp32", "n": "i32"}


def emit(func, lanes=16, **kw):
    return emit_simt(func, OpenCLDialect(lanes, **kw), lanes)


def kernel_body(src) -> str:
    return src.source[src.source.index("__kernel"):]


def test_elementwise_kernel_is_one_lane_loop_without_barriers():
    src = emit(func_of(add_kernel, F32_PTRS, {"BLOCK": 256}))
    body = kernel_body(src)
    assert "for (int k = 0, i = lid; i < 256; i += 16, k++)" in body
    assert "barrier(" not in body and "__local" not in body and src.local_bytes == 0
    assert src.kernel_name == "ky_add_kernel" and src.lanes == 16 and not src.assert_slot
    # pointers travel as buffer + byte offset; the scalar as itself
    assert "__global char *arg0_base, ulong arg0_off" in body and "int32_t arg3" in body
    assert [p[0] for p in src.params] == ["ptr", "ptr", "ptr", "scalar"]


def test_softmax_reduces_in_local_memory_with_a_lane_tree():
    src = emit(func_of(softmax_kernel, {"x_ptr": "*fp32", "y_ptr": "*fp32", "n_cols": "i32", "stride": "i32"},
                       {"BLOCK": 1024}), lanes=64)
    body = kernel_body(src)
    # the row stays in registers (a private array of 1024/64 elements per lane), the partials of
    # both reductions meet in local memory, in a tree that is one loop with one barrier
    assert "[16];" in body and "p" in body.split("[16];")[0].split()[-1]
    assert "__local float ky_red" in body
    assert body.count("for (int s = 32; s > 0; s >>= 1)") == 2
    assert "barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);" in body
    assert src.local_bytes == 2 * 64 * 4          # two alternating tree buffers of L floats


def test_dot_operands_are_shared_in_local_memory():
    src = emit(func_of(dot_kernel, {"a_ptr": "*fp32", "b_ptr": "*fp32", "c_ptr": "*fp32"}, {"M": 16, "N": 16, "K": 32}))
    body = kernel_body(src)
    assert body.count("__local float") >= 3       # a, b and the result; the zero accumulator is not stored
    assert src.local_bytes >= (16 * 32 + 32 * 16 + 16 * 16) * 4
    assert "for (int kk = 0; kk < 32; kk++)" in body


def test_halves_are_bits_converted_in_software():
    sig = {"x": "*fp16", "y": "*bf16", "out": "*fp16", "n": "i32"}
    src = emit(func_of(add_kernel, sig, {"BLOCK": 64}))
    body = kernel_body(src)
    assert "ky_h2f(" in body and "ky_bf2f(" in body and "ky_f2h(" in body
    assert " half " not in body and "cl_khr_fp16" not in src.source


def test_atomics_on_floats_are_compare_and_swap_loops():
    src = emit(func_of(atomic_kernel, {"p": "*fp32", "v": "*fp32"}, {"BLOCK": 32}))
    assert "atomic_cmpxchg" in kernel_body(src)
    src = emit(func_of(atomic_kernel, {"p": "*i32", "v": "*i32"}, {"BLOCK": 32}))
    assert "atomic_add(" in kernel_body(src) and "atomic_cmpxchg" not in kernel_body(src)


def test_unsupported_dtypes_name_the_op_and_line():
    func = func_of(atomic_kernel, {"p": "*i8", "v": "*i8"}, {"BLOCK": 32})
    with pytest.raises(ky.UnsupportedError) as info:
        emit(func)
    assert "8-bit atomics" in info.value.message and "kernels.py:" in (info.value.loc or "")
    func = func_of(add_kernel, {"x": "*fp64", "y": "*fp64", "out": "*fp64", "n": "i32"}, {"BLOCK": 64})
    with pytest.raises(ky.UnsupportedError) as info:
        check_supported(func, "opencl", float64=False)
    assert "float64" in info.value.message and "kernels.py:" in (info.value.loc or "")


def test_lanes_must_be_a_power_of_two():
    with pytest.raises(ValueError):
        emit(func_of(add_kernel, F32_PTRS, {"BLOCK": 256}), lanes=24)
