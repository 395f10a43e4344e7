"""Atomics across programs, device assert, print."""

import numpy as np
import pytest

from kaiyuan.runtime.errors import DeviceAssertError

from .helpers import Compiled, module


def atomic_kernel(kind: str, elem: str) -> str:
    return module("\n".join([
        '    %r = "ky.make_range"() <{start = 0 : i32, end = 16 : i32}> : () -> tensor<16xi32>',
        '    %pid = "ky.program_id"() <{axis = 0 : i32}> : () -> i32',
        '    %zero = arith.constant 0 : i32',
        '    %zs = "ky.splat"(%zero) : (i32) -> tensor<16xi32>',
        f'    %cs = "ky.splat"(%c) : (!ky.ptr<{elem}>) -> tensor<16x!ky.ptr<{elem}>>',
        f'    %cp = "ky.addptr"(%cs, %zs) : (tensor<16x!ky.ptr<{elem}>>, tensor<16xi32>) -> tensor<16x!ky.ptr<{elem}>>',
        f'    %vs = "ky.splat"(%v) : ({elem}) -> tensor<16x{elem}>',
        f'    %old = "ky.atomic_rmw"(%cp, %vs) <{{kind = "{kind}", operandSegmentSizes = array<i32: 1, 1, 0>}}> : '
        f'(tensor<16x!ky.ptr<{elem}>>, tensor<16x{elem}>) -> tensor<16x{elem}>',
    ]), f"%c: !ky.ptr<{elem}>, %v: {elem}")


@pytest.mark.parametrize("kind,elem,npt,val", [("add", "i32", np.int32, 3), ("fadd", "f32", np.float32, 0.5),
                                               ("add", "i64", np.int64, 7), ("fadd", "f64", np.float64, 0.25)])
def test_atomic_add_from_many_programs_is_exact(kind, elem, npt, val):
    k = Compiled(atomic_kernel(kind, elem))
    c = np.zeros(1, npt)
    grid = 2000                                           # 2000 programs x 16 lanes, both cores
    k((grid,), c, (val, elem.replace("f", "fp") if elem[0] == "f" else elem))
    assert c[0] == grid * 16 * val                         # exact: every value is representable


def test_atomic_max_and_cas():
    k = Compiled(module("\n".join([
        '    %pid = "ky.program_id"() <{axis = 0 : i32}> : () -> i32',
        '    %o = "ky.atomic_rmw"(%c, %pid) <{kind = "max", operandSegmentSizes = array<i32: 1, 1, 0>}> : (!ky.ptr<i32>, i32) -> i32',
        '    %one = arith.constant 1 : i32',
        '    %lock = "ky.addptr"(%c, %one) : (!ky.ptr<i32>, i32) -> !ky.ptr<i32>',
        '    %z = arith.constant 0 : i32',
        '    %p1 = arith.addi %pid, %one : i32',
        '    %old = "ky.atomic_cas"(%lock, %z, %p1) : (!ky.ptr<i32>, i32, i32) -> i32',
        '    %won = arith.cmpi eq, %old, %z : i32',
        '    %two = arith.constant 2 : i32',
        '    %wp = "ky.addptr"(%c, %two) : (!ky.ptr<i32>, i32) -> !ky.ptr<i32>',
        '    %w = arith.extui %won : i1 to i32',
        '    %o2 = "ky.atomic_rmw"(%wp, %w) <{kind = "add", operandSegmentSizes = array<i32: 1, 1, 0>}> : (!ky.ptr<i32>, i32) -> i32',
    ]), "%c: !ky.ptr<i32>"))
    c = np.zeros(3, np.int32)
    k((500,), c)
    assert c[0] == 499 and 1 <= c[1] <= 500 and c[2] == 1   # exactly one program wins the CAS


ASSERT = module("\n".join([
    '    %pid = "ky.program_id"() <{axis = 0 : i32}> : () -> i32',
    '    %r = "ky.make_range"() <{start = 0 : i32, end = 8 : i32}> : () -> tensor<8xi32>',
    '    %lim = "ky.splat"(%n) : (i32) -> tensor<8xi32>',
    '    %ps = "ky.splat"(%pid) : (i32) -> tensor<8xi32>',
    '    %v = arith.addi %r, %ps : tensor<8xi32>',
    '    %ok = arith.cmpi slt, %v, %lim : tensor<8xi32>',
    '    "ky.assert"(%ok) <{message = "index out of range"}> : (tensor<8xi1>) -> () loc("my_kernel.py":42:8)',
    '    %cp = "ky.addptr"(%c, %pid) : (!ky.ptr<i32>, i32) -> !ky.ptr<i32>',
    '    %one = arith.constant 1 : i32',
    '    "ky.store"(%cp, %one) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : (!ky.ptr<i32>, i32) -> ()',
]), "%c: !ky.ptr<i32>, %n: i32")


def test_device_assert_names_file_line_program_and_message():
    k = Compiled(ASSERT)
    c = np.zeros(4, np.int32)
    k((4,), c, (100, "i32"))                              # passes everywhere
    assert c.tolist() == [1, 1, 1, 1]
    c[:] = 0
    with pytest.raises(DeviceAssertError) as e:
        k((4,), c, (10, "i32"))                           # program 3 sees 3+7 = 10: fails
    msg = str(e.value)
    assert "my_kernel.py:42" in msg and "index out of range" in msg and "(3, 0, 0)" in msg
    assert c.tolist() == [1, 1, 1, 0]                      # the failing program stopped at the assert
    k((3,), c, (10, "i32"))                               # the slot is cleared at the next launch


def test_print(capfd):
    k = Compiled(module("\n".join([
        '    %pid = "ky.program_id"() <{axis = 0 : i32}> : () -> i32',
        '    %r = "ky.make_range"() <{start = 0 : i32, end = 4 : i32}> : () -> tensor<4xi32>',
        '    "ky.print"(%pid, %r) <{prefix = "vals:"}> : (i32, tensor<4xi32>) -> ()',
    ]), ""))
    k((2,))
    out = capfd.readouterr().out.splitlines()
    assert sorted(out) == ["pid (0, 0, 0) vals: 0 [0 1 2 3]", "pid (1, 0, 0) vals: 1 [0 1 2 3]"]
