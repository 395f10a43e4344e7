"""Bounds checking, masked lanes, store ordering, atomics, pointer tiles."""

import numpy as np
import pytest

from kaiyuan.runtime.errors import MemoryAccessError, UnsupportedError

from .helpers import module, run
from .test_elementwise import VECTOR_ADD

COPY = module("""
    %pid = "ky.program_id"() <{axis = 0 : i32}> : () -> i32
    %r = "ky.make_range"() <{start = 0 : i32, end = 8 : i32}> : () -> tensor<8xi32>
    %c8 = arith.constant 8 : i32
    %b = arith.muli %pid, %c8 : i32
    %bs = "ky.splat"(%b) : (i32) -> tensor<8xi32>
    %o = arith.addi %bs, %r : tensor<8xi32>
    %xp = "ky.splat"(%x) : (!ky.ptr<f32>) -> tensor<8x!ky.ptr<f32>>
    %xs = "ky.addptr"(%xp, %o) : (tensor<8x!ky.ptr<f32>>, tensor<8xi32>) -> tensor<8x!ky.ptr<f32>>
    %v = "ky.load"(%xs) <{operandSegmentSizes = array<i32: 1, 0, 0>}> : (tensor<8x!ky.ptr<f32>>) -> tensor<8xf32> loc("k.py":7:3)
    %yp = "ky.splat"(%y) : (!ky.ptr<f32>) -> tensor<8x!ky.ptr<f32>>
    %ys = "ky.addptr"(%yp, %o) : (tensor<8x!ky.ptr<f32>>, tensor<8xi32>) -> tensor<8x!ky.ptr<f32>>
    "ky.store"(%ys, %v) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : (tensor<8x!ky.ptr<f32>>, tensor<8xf32>) -> () loc("k.py":8:3)
""", "%x: !ky.ptr<f32>, %y: !ky.ptr<f32>")


def test_out_of_bounds_load_names_line_program_and_lane():
    x, y = np.ones(12, np.float32), np.zeros(16, np.float32)
    with pytest.raises(MemoryAccessError) as err:
        run(COPY, (2,), x, y)  # program 1 reads elements 8..15 of a 12-element x
    msg = str(err.value)
    assert "k.py:7" in msg and "ky.load" in msg
    assert "program (1, 0, 0)" in msg
    assert "lane 4 accesses element 12 of argument 'x'" in msg
    assert "48-byte buffer" in msg and "mask the access" in msg
    assert (y[:8] == 1).all()  # program 0 ran to completion before the fault


def test_out_of_bounds_store_is_reported_as_store():
    x, y = np.ones(16, np.float32), np.zeros(10, np.float32)
    with pytest.raises(MemoryAccessError, match=r"k\.py:8: ky\.store: .*program \(1, 0, 0\).*element 10 of argument 'y'"):
        run(COPY, (2,), x, y)


def test_negative_offsets_are_out_of_bounds_even_inside_the_buffer():
    # the argument starts mid-buffer: reading before it is inside the buffer but element -1 is reported
    base = np.arange(20, dtype=np.float32)
    out = np.zeros(8, np.float32)
    text = COPY.replace("%c8 = arith.constant 8 : i32", "%c8 = arith.constant -1 : i32")
    run(text, (1,), base[4:], out)  # offsets 0..7 of x: fine
    np.testing.assert_array_equal(out, base[4:12])
    with pytest.raises(MemoryAccessError, match="lane 0 accesses element -1"):
        run(text, (2,), base, np.zeros(16, np.float32))  # program 1 starts at element -1


def test_masked_off_out_of_bounds_lanes_do_not_raise_or_write():
    n = 5
    x = np.arange(n, dtype=np.float32)
    y = np.arange(n, dtype=np.float32)
    out = np.zeros(n, np.float32)  # exactly n: lanes 5..127 would be out of bounds
    run(VECTOR_ADD, (1,), x, y, out, n)
    np.testing.assert_array_equal(out, 2 * x)


def test_load_other_fills_masked_lanes():
    x = np.arange(4, dtype=np.float32)
    out = np.zeros(8, np.float32)
    run(module("""
    %r = "ky.make_range"() <{start = 0 : i32, end = 8 : i32}> : () -> tensor<8xi32>
    %n = arith.constant 4 : i32
    %ns = "ky.splat"(%n) : (i32) -> tensor<8xi32>
    %m = arith.cmpi slt, %r, %ns : tensor<8xi32>
    %f = arith.constant -1.0 : f32
    %fs = "ky.splat"(%f) : (f32) -> tensor<8xf32>
    %xp = "ky.splat"(%x) : (!ky.ptr<f32>) -> tensor<8x!ky.ptr<f32>>
    %xs = "ky.addptr"(%xp, %r) : (tensor<8x!ky.ptr<f32>>, tensor<8xi32>) -> tensor<8x!ky.ptr<f32>>
    %v = "ky.load"(%xs, %m, %fs) <{operandSegmentSizes = array<i32: 1, 1, 1>}> : (tensor<8x!ky.ptr<f32>>, tensor<8xi1>, tensor<8xf32>) -> tensor<8xf32>
    %yp = "ky.splat"(%y) : (!ky.ptr<f32>) -> tensor<8x!ky.ptr<f32>>
    %ys = "ky.addptr"(%yp, %r) : (tensor<8x!ky.ptr<f32>>, tensor<8xi32>) -> tensor<8x!ky.ptr<f32>>
    "ky.store"(%ys, %v) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : (tensor<8x!ky.ptr<f32>>, tensor<8xf32>) -> ()
""", "%x: !ky.ptr<f32>, %y: !ky.ptr<f32>"), (1,), x, out)
    np.testing.assert_array_equal(out, [0, 1, 2, 3, -1, -1, -1, -1])


def test_store_duplicate_addresses_last_lane_wins():
    out = np.zeros(2, np.int32)
    run(module("""
    %r = "ky.make_range"() <{start = 0 : i32, end = 8 : i32}> : () -> tensor<8xi32>
    %z = arith.constant 0 : i32
    %zs = "ky.splat"(%z) : (i32) -> tensor<8xi32>
    %op = "ky.splat"(%o) : (!ky.ptr<i32>) -> tensor<8x!ky.ptr<i32>>
    %oa = "ky.addptr"(%op, %zs) : (tensor<8x!ky.ptr<i32>>, tensor<8xi32>) -> tensor<8x!ky.ptr<i32>>
    "ky.store"(%oa, %r) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : (tensor<8x!ky.ptr<i32>>, tensor<8xi32>) -> ()
""", "%o: !ky.ptr<i32>"), (1,), out)
    assert out[0] == 7 and out[1] == 0


def _atomic_add(kind, t):
    return module(f"""
    %r = "ky.make_range"() <{{start = 0 : i32, end = 4 : i32}}> : () -> tensor<4xi32>
    %z = arith.constant 0 : i32
    %zs = "ky.splat"(%z) : (i32) -> tensor<4xi32>
    %pid = "ky.program_id"() <{{axis = 0 : i32}}> : () -> i32
    %ps = "ky.splat"(%pid) : (i32) -> tensor<4xi32>
    %cp = "ky.splat"(%c) : (!ky.ptr<{t}>) -> tensor<4x!ky.ptr<{t}>>
    %ca = "ky.addptr"(%cp, %zs) : (tensor<4x!ky.ptr<{t}>>, tensor<4xi32>) -> tensor<4x!ky.ptr<{t}>>
    %one = arith.constant 1 : {t}
    %ones = "ky.splat"(%one) : ({t}) -> tensor<4x{t}>
    %two = arith.constant 2 : i32
    %tw = "ky.splat"(%two) : (i32) -> tensor<4xi32>
    %m = arith.cmpi slt, %r, %tw : tensor<4xi32>
    %old = "ky.atomic_rmw"(%ca, %ones, %m) <{{kind = "{kind}", operandSegmentSizes = array<i32: 1, 1, 1>}}> : (tensor<4x!ky.ptr<{t}>>, tensor<4x{t}>, tensor<4xi1>) -> tensor<4x{t}>
    %q = arith.constant 4 : i32
    %b = arith.muli %pid, %q : i32
    %bs = "ky.splat"(%b) : (i32) -> tensor<4xi32>
    %o = arith.addi %bs, %r : tensor<4xi32>
    %op = "ky.splat"(%olds) : (!ky.ptr<{t}>) -> tensor<4x!ky.ptr<{t}>>
    %oa = "ky.addptr"(%op, %o) : (tensor<4x!ky.ptr<{t}>>, tensor<4xi32>) -> tensor<4x!ky.ptr<{t}>>
    "ky.store"(%oa, %old) <{{operandSegmentSizes = array<i32: 1, 1, 0>}}> : (tensor<4x!ky.ptr<{t}>>, tensor<4x{t}>) -> ()
""", f"%c: !ky.ptr<{t}>, %olds: !ky.ptr<{t}>")


def test_atomic_add_across_programs_returns_old_values():
    counter, olds = np.zeros(1, np.int32), np.full(4 * 5, -9, np.int32)
    run(_atomic_add("add", "i32"), (5,), counter, olds)
    assert counter[0] == 10  # 5 programs x 2 active lanes
    olds = olds.reshape(5, 4)
    np.testing.assert_array_equal(olds[:, :2].reshape(-1), np.arange(10))  # lanes apply one after another
    assert (olds[:, 2:] == 0).all()  # masked-off lanes return 0 and add nothing


def test_atomic_umax_compares_unsigned():
    counter, olds = np.array([5], np.int32), np.zeros(4, np.int32)
    text = _atomic_add("umax", "i32").replace("%one = arith.constant 1 : i32", "%one = arith.constant -1 : i32")
    run(text, (1,), counter, olds)
    assert counter[0] == -1  # 0xFFFFFFFF is the unsigned maximum


def test_atomic_cas_swaps_only_on_match():
    cells = np.array([0, 5], np.int32)
    olds = np.zeros(2, np.int32)
    run(module("""
    %r = "ky.make_range"() <{start = 0 : i32, end = 2 : i32}> : () -> tensor<2xi32>
    %cp = "ky.splat"(%c) : (!ky.ptr<i32>) -> tensor<2x!ky.ptr<i32>>
    %ca = "ky.addptr"(%cp, %r) : (tensor<2x!ky.ptr<i32>>, tensor<2xi32>) -> tensor<2x!ky.ptr<i32>>
    %zero = arith.constant 0 : i32
    %cmp = "ky.splat"(%zero) : (i32) -> tensor<2xi32>
    %seven = arith.constant 7 : i32
    %val = "ky.splat"(%seven) : (i32) -> tensor<2xi32>
    %old = "ky.atomic_cas"(%ca, %cmp, %val) : (tensor<2x!ky.ptr<i32>>, tensor<2xi32>, tensor<2xi32>) -> tensor<2xi32>
    %op = "ky.splat"(%o) : (!ky.ptr<i32>) -> tensor<2x!ky.ptr<i32>>
    %oa = "ky.addptr"(%op, %r) : (tensor<2x!ky.ptr<i32>>, tensor<2xi32>) -> tensor<2x!ky.ptr<i32>>
    "ky.store"(%oa, %old) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : (tensor<2x!ky.ptr<i32>>, tensor<2xi32>) -> ()
""", "%c: !ky.ptr<i32>, %o: !ky.ptr<i32>"), (1,), cells, olds)
    np.testing.assert_array_equal(cells, [7, 5])
    np.testing.assert_array_equal(olds, [0, 5])


TRANSPOSE = module("""
    %r = "ky.make_range"() <{start = 0 : i32, end = 4 : i32}> : () -> tensor<4xi32>
    %c = arith.constant 4 : i32
    %cs = "ky.splat"(%c) : (i32) -> tensor<4xi32>
    %rows = arith.muli %r, %cs : tensor<4xi32>
    %r2 = "ky.expand_dims"(%rows) <{axis = 1 : i32}> : (tensor<4xi32>) -> tensor<4x1xi32>
    %c2 = "ky.expand_dims"(%r) <{axis = 0 : i32}> : (tensor<4xi32>) -> tensor<1x4xi32>
    %rb = "ky.broadcast"(%r2) : (tensor<4x1xi32>) -> tensor<4x4xi32>
    %cb = "ky.broadcast"(%c2) : (tensor<1x4xi32>) -> tensor<4x4xi32>
    %off = arith.addi %rb, %cb : tensor<4x4xi32>
    %xp = "ky.splat"(%x) : (!ky.ptr<f32>) -> tensor<4x4x!ky.ptr<f32>>
    %xa = "ky.addptr"(%xp, %off) : (tensor<4x4x!ky.ptr<f32>>, tensor<4x4xi32>) -> tensor<4x4x!ky.ptr<f32>>
    %yp = "ky.splat"(%y) : (!ky.ptr<f32>) -> tensor<4x4x!ky.ptr<f32>>
    %ya = "ky.addptr"(%yp, %off) : (tensor<4x4x!ky.ptr<f32>>, tensor<4x4xi32>) -> tensor<4x4x!ky.ptr<f32>>
    %yt = "ky.trans"(%ya) <{order = array<i32: 1, 0>}> : (tensor<4x4x!ky.ptr<f32>>) -> tensor<4x4x!ky.ptr<f32>>
    %v = "ky.load"(%xa) <{operandSegmentSizes = array<i32: 1, 0, 0>}> : (tensor<4x4x!ky.ptr<f32>>) -> tensor<4x4xf32>
    "ky.store"(%yt, %v) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : (tensor<4x4x!ky.ptr<f32>>, tensor<4x4xf32>) -> ()
""", "%x: !ky.ptr<f32>, %y: !ky.ptr<f32>")


def test_pointer_tiles_expand_broadcast_trans():
    x = np.arange(16, dtype=np.float32).reshape(4, 4)
    y = np.zeros((4, 4), np.float32)
    run(TRANSPOSE, (1,), x, y)
    np.testing.assert_array_equal(y, x.T)


def test_2d_out_of_bounds_lane_reported_as_index():
    x = np.arange(16, dtype=np.float32).reshape(4, 4)
    with pytest.raises(MemoryAccessError, match=r"lane \(3, 3\) accesses element 15 of argument 'y'"):
        run(TRANSPOSE, (1,), x, np.zeros(15, np.float32))


SELECT_PTR = module("""
    %r = "ky.make_range"() <{start = 0 : i32, end = 4 : i32}> : () -> tensor<4xi32>
    %two = arith.constant 2 : i32
    %ts = "ky.splat"(%two) : (i32) -> tensor<4xi32>
    %m = arith.cmpi slt, %r, %ts : tensor<4xi32>
    %ap = "ky.splat"(%a) : (!ky.ptr<f32>) -> tensor<4x!ky.ptr<f32>>
    %aa = "ky.addptr"(%ap, %r) : (tensor<4x!ky.ptr<f32>>, tensor<4xi32>) -> tensor<4x!ky.ptr<f32>>
    %bp = "ky.splat"(%b) : (!ky.ptr<f32>) -> tensor<4x!ky.ptr<f32>>
    %ba = "ky.addptr"(%bp, %r) : (tensor<4x!ky.ptr<f32>>, tensor<4xi32>) -> tensor<4x!ky.ptr<f32>>
    %p = arith.select %m, %aa, %ba : tensor<4xi1>, tensor<4x!ky.ptr<f32>>
    %v = "ky.load"(%p) <{operandSegmentSizes = array<i32: 1, 0, 0>}> : (tensor<4x!ky.ptr<f32>>) -> tensor<4xf32>
    %op = "ky.splat"(%o) : (!ky.ptr<f32>) -> tensor<4x!ky.ptr<f32>>
    %oa = "ky.addptr"(%op, %r) : (tensor<4x!ky.ptr<f32>>, tensor<4xi32>) -> tensor<4x!ky.ptr<f32>>
    "ky.store"(%oa, %v) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : (tensor<4x!ky.ptr<f32>>, tensor<4xf32>) -> ()
""", "%a: !ky.ptr<f32>, %b: !ky.ptr<f32>, %o: !ky.ptr<f32>")


def test_select_between_pointer_tiles_of_one_buffer():
    from .helpers import DEVICE, PointerArg, arg
    from kaiyuan.runtime.dtypes import float32
    buf = np.arange(8, dtype=np.float32)
    out = np.zeros(4, np.float32)
    whole = arg(buf)
    b_half = PointerArg(whole.buffer, whole.offset + 16, float32)  # a second argument 4 elements in
    run(SELECT_PTR, (1,), whole, b_half, out)
    np.testing.assert_array_equal(out, [0, 1, 6, 7])
    with pytest.raises(UnsupportedError, match="different buffers"):
        run(SELECT_PTR, (1,), buf, np.zeros(4, np.float32), out)
