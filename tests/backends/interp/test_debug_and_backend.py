"""ky.print, ky.assert, the backend/device/compiler contract, load-time errors."""

import numpy as np
import pytest

from kaiyuan.backends.host import HostAllocator
from kaiyuan.backends.interp import InterpBackend, InterpCompiler, InterpProgram
from kaiyuan.runtime.backend import ScalarArg
from kaiyuan.runtime.dtypes import int32
from kaiyuan.runtime.errors import ArgumentError, DeviceAssertError, UnsupportedError

from .helpers import compile_ir, module, run

PRINT_ASSERT = module("""
    %pid = "ky.program_id"() <{axis = 0 : i32}> : () -> i32
    %r = "ky.make_range"() <{start = 0 : i32, end = 4 : i32}> : () -> tensor<4xi32>
    "ky.print"(%pid, %r) <{prefix = "vals:"}> : (i32, tensor<4xi32>) -> ()
    %ns = "ky.splat"(%n) : (i32) -> tensor<4xi32>
    %ok = arith.cmpi slt, %r, %ns : tensor<4xi32>
    "ky.assert"(%ok) <{message = "r < n"}> : (tensor<4xi1>) -> () loc("kern.py":12:5)
""", "%n: i32")


def test_print_one_line_per_program(capsys):
    run(PRINT_ASSERT, (2, 1, 1), 10)
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["pid (0, 0, 0) vals: 0 [0 1 2 3]", "pid (1, 0, 0) vals: 1 [0 1 2 3]"]


def test_device_assert_failure_names_line_program_and_message(capsys):
    with pytest.raises(DeviceAssertError) as err:
        run(PRINT_ASSERT, (1, 2, 1), 3)
    msg = str(err.value)
    assert "kern.py:12" in msg and "program (0, 0, 0)" in msg and "r < n" in msg


def test_backend_device_and_stages():
    backend = InterpBackend()
    assert backend.name == "interp" and backend.unavailable_reason() is None and backend.device_count() == 1
    dev = backend.device(0)
    assert dev.is_host and dev.name == "interp" and dev.properties["bounds_checked"] is True
    assert isinstance(dev.allocator, HostAllocator)
    assert isinstance(dev.compiler, InterpCompiler) and dev.compiler.target == "interp"
    assert [(s.name, s.kind) for s in dev.compiler.stages({})] == [("ky", "ir"), ("bin", "binary")]
    assert np.__version__ in dev.compiler.toolchain_version()


def test_allocated_buffer_round_trip():
    dev = InterpBackend().device(0)
    buf = dev.allocator.alloc(4 * 6)
    dev.allocator.copy_in(buf, 0, np.zeros(6, np.int32))
    prog = compile_ir(module("""
    %pid = "ky.program_id"() <{axis = 0 : i32}> : () -> i32
    %np = "ky.num_programs"() <{axis = 0 : i32}> : () -> i32
    %p = "ky.addptr"(%o, %pid) : (!ky.ptr<i32>, i32) -> !ky.ptr<i32>
    "ky.store"(%p, %np) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : (!ky.ptr<i32>, i32) -> ()
""", "%o: !ky.ptr<i32>"))
    from kaiyuan.runtime.backend import PointerArg
    prog.launch((6, 1, 1), [PointerArg(buf, 0, int32)])
    out = np.empty(6, np.int32)
    dev.allocator.copy_out(buf, 0, out)
    np.testing.assert_array_equal(out, [6] * 6)


def test_unknown_op_is_rejected_at_load_with_location():
    text = module("""
    %a = arith.constant 1 : i32
    %b = arith.ceildivsi %a, %a : i32 loc("k.py":3:1)
""", "")
    with pytest.raises(UnsupportedError, match=r"k\.py:3.*arith\.ceildivsi"):
        compile_ir(text)


def test_wrong_argument_count_and_kind():
    prog = compile_ir(PRINT_ASSERT)
    assert isinstance(prog, InterpProgram)
    with pytest.raises(ArgumentError):
        prog.launch((1, 1, 1), [])
    with pytest.raises(ArgumentError):
        prog.launch((1, 1, 1), [object()])
    prog.launch((1, 1, 1), [ScalarArg(10, int32)])
