"""ONNX Reduce* and ArgMax/ArgMin against onnx's reference evaluator (tests/ops/onnx_node.py).

Tolerances (relative and absolute, on values of order 1): fp32 1e-5/1e-5 (different summation
order); fp64 1e-12; fp16 1e-2 and bf16 4e-2, because the reference sums fp16/bf16 in that type
while kaiyuan sums in fp32 and rounds once; integers exact. ReduceSumSquare of integers is
compared with numpy (the reference widens int32 to int64 there, against the ONNX type rule).
"""

import ml_dtypes
import numpy as np
import pytest

from kaiyuan.runtime.errors import ArgumentError, UnsupportedError

from .conftest import available_devices
from .onnx_node import check, run_kaiyuan

REDUCE = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
          "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"]
POSITIVE = ("ReduceLogSum", "ReduceProd")        # inputs kept in (0.5, 1.5): log > -inf, no overflow
TOL = {np.float32: (1e-5, 1e-5), np.float64: (1e-12, 1e-12), np.float16: (1e-2, 1e-2),
       ml_dtypes.bfloat16: (4e-2, 4e-2)}


def data(rng, op, shape, dtype=np.float32):
    x = rng.standard_normal(shape)
    if op in POSITIVE:
        x = rng.random(shape) + 0.5
    return x.astype(dtype)


def reduce(op, x, axes=None, keepdims=1, opset=18, noop=None, device="cpu", dtype=None):
    """check() one Reduce node, with axes as an input (ReduceSum, opset >= 18) or attribute."""
    attrs = {"keepdims": keepdims}
    inputs = [x]
    if op == "ReduceSum" or opset >= 18:
        if axes is not None:
            inputs.append(np.array(axes, np.int64))
        if noop is not None:
            attrs["noop_with_empty_axes"] = noop
    elif axes is not None:
        attrs["axes"] = list(axes)
    rtol, atol = TOL.get(dtype or x.dtype.type, (0, 0))
    return check(op, inputs, attrs, opset=opset, rtol=rtol, atol=atol, device=device)


@pytest.mark.parametrize("op", REDUCE)
def test_each_axis_and_keepdims(op, rng):
    x = data(rng, op, (3, 5, 7))
    for axes in ([0], [1], [2], [-1], [-3], [0, 2], [2, 0], [0, 1, 2], None):
        for keepdims in (0, 1):
            reduce(op, x, axes, keepdims)
    reduce(op, x, [1], 1, opset=13)
    reduce(op, x, [-1, 0], 0, opset=13)
    reduce(op, x, None, 0, opset=13)


@pytest.mark.parametrize("op", REDUCE)
def test_empty_axes_noop(op, rng):
    x = data(rng, op, (2, 3))
    out = reduce(op, x, [], 1, noop=1)[0]
    assert out.shape == (2, 3)
    assert reduce(op, x, [], 0, noop=0)[0].shape == ()      # empty axes, noop=0: every axis
    assert reduce(op, x, None, 1, noop=1)[0].shape == (2, 3)


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceLogSumExp", "ReduceL2"])
@pytest.mark.parametrize("dtype", [np.float64, np.float16, ml_dtypes.bfloat16])
def test_float_dtypes(op, dtype, rng):
    x = data(rng, op, (4, 6, 5), dtype)
    reduce(op, x, [1], 1)
    reduce(op, x, [0, 2], 0)


INT_OPS = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2"]


@pytest.mark.parametrize("op", INT_OPS)
def test_integer_dtypes(op, rng):
    x = rng.integers(-20, 20, (3, 4, 5)).astype(np.int32)
    if op == "ReduceProd":
        x = x % 3 + 1
    reduce(op, x, [1], 1)
    reduce(op, x, [0, 2], 0)
    if op in ("ReduceSum", "ReduceMean", "ReduceMin"):   # one layout for each other integer type
        for dtype in (np.int64, np.uint32, np.uint64):
            reduce(op, (x + 20).astype(dtype), [2], 0)


def test_integer_sum_wraps_and_sum_square(rng):
    x = np.full((3, 4), 2**30, np.int32)
    assert reduce("ReduceSum", x, [1], 0)[0].tolist() == [0, 0, 0]          # 4 * 2**30 wraps in int32
    y = rng.integers(-100, 100, (3, 4, 5)).astype(np.int32)
    got = run_kaiyuan("ReduceSumSquare", [y, np.array([1], np.int64)], {"keepdims": 0}, opset=18)[0]
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, (y.astype(np.int64) ** 2).sum(1).astype(np.int32))
    assert reduce("ReduceMean", np.array([[-7, 2]], np.int32), [1], 0)[0].tolist() == [-2]   # truncates


@pytest.mark.parametrize("op", ["ReduceMax", "ReduceMin"])
def test_small_int_and_bool(op, rng):
    for dtype in (np.int8, np.uint8):
        x = rng.integers(0 if dtype == np.uint8 else -128, 127, (4, 9)).astype(dtype)
        reduce(op, x, [1], 0)
        reduce(op, x, [0], 1, opset=13)
    b = rng.random((4, 9)) < 0.3
    reduce(op, b, [1], 0, opset=20)
    reduce(op, b, None, 1, opset=20)
    with pytest.raises(UnsupportedError, match="bool"):
        reduce(op, b, [1], 0, opset=18)


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMax", "ReduceLogSumExp", "ReduceL2"])   # one per MAP/COMB kind
def test_non_contiguous(op, rng):
    base = data(rng, op, (6, 9, 8))
    for x in (base.transpose(2, 0, 1), base[::2, 1::3, ::-1], base[:, 3]):
        reduce(op, x, [1], 1)
        reduce(op, x, [0, -1], 0)


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMax", "ReduceMean", "ReduceLogSumExp"])
def test_long_rows_and_columns(op, rng):
    x = data(rng, op, (3, 2500))        # several BLOCK_R chunks along a contiguous row
    reduce(op, x, [1], 0, dtype=np.float16)   # summing 2500 values: fp16-like tolerance
    y = data(rng, op, (300, 70))        # a leading axis longer than the tile, 70 columns
    reduce(op, y, [0], 1, dtype=np.float16)


def test_high_rank_axes(rng):
    x = rng.standard_normal((2, 3, 2, 3, 2, 3)).astype(np.float32)
    reduce("ReduceSum", x, [1, 3, 5], 0)                       # 3 kept x 3 reduced groups
    reduce("ReduceMax", x.transpose(5, 0, 4, 1, 3, 2), [0, 2, 4], 1)   # read through a contiguous copy
    y = rng.standard_normal((2,) * 8).astype(np.float32)
    reduce("ReduceSum", y, [0, 1, 2, 3], 0)                    # rank 8 whose axes merge
    with pytest.raises(UnsupportedError, match="dim groups"):
        reduce("ReduceSum", y, [1, 3, 5], 0)                   # 4 kept groups even when contiguous


@pytest.mark.parametrize("op", REDUCE)
def test_empty_and_scalar(op, rng):
    x = np.zeros((3, 0, 4), np.float32)
    out = reduce(op, x, [1], 0)[0]                # an empty reduction: the identity (or NaN for Mean)
    assert out.shape == (3, 4)
    assert reduce(op, x, [2], 1)[0].shape == (3, 0, 1)
    s = np.array(1.25, np.float32)
    if op not in ("ReduceSum", "ReduceLogSumExp", "ReduceL1"):
        return
    if op == "ReduceLogSumExp":   # the reference cannot squeeze a 0-d result: LSE of one value is itself
        got = run_kaiyuan(op, [s], {"keepdims": 0}, opset=18)[0]
        assert got.shape == () and abs(float(got) - 1.25) < 1e-6
    else:
        assert reduce(op, s, None, 0)[0].shape == ()


def test_reduce_errors(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    with pytest.raises(ArgumentError, match="out of range"):
        reduce("ReduceSum", x, [2], 1)
    with pytest.raises(ArgumentError, match="repeat"):
        reduce("ReduceMean", x, [1, -1], 1)
    with pytest.raises(UnsupportedError, match="int32"):
        reduce("ReduceLogSum", x.astype(np.int32), [1], 1)
    with pytest.raises(UnsupportedError, match="int8"):
        reduce("ReduceSum", x.astype(np.int8), [1], 1)
    from kaiyuan.ops.schema import TensorType, lookup
    op = lookup("ReduceSum", 13)
    types = [TensorType(x.dtype, x.shape), TensorType(np.dtype(np.int64), (1,))]
    with pytest.raises(UnsupportedError, match="constant"):
        op.infer(types, op.resolve_attrs({}, "t"), [None, None])


@pytest.mark.skipif("interp" not in available_devices(), reason="the interp device is not available")
def test_reduce_interp(rng):
    x = rng.standard_normal((3, 5, 4)).astype(np.float32)
    for op in ("ReduceSum", "ReduceMax", "ReduceLogSumExp", "ReduceL2"):
        reduce(op, x, [1], 1, device="interp")
        reduce(op, x.transpose(2, 0, 1), [0, 2], 0, device="interp")
    reduce("ReduceProd", np.arange(1, 7, dtype=np.int64).reshape(2, 3), [0], 0, device="interp")


# ------------------------------------------------------------------------------- ArgMax / ArgMin
def arg(op, x, axis=0, keepdims=1, last=0, device="cpu"):
    return check(op, [x], {"axis": axis, "keepdims": keepdims, "select_last_index": last}, opset=13, device=device)


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
def test_arg_axes_ties_and_last(op, rng):
    x = rng.integers(-3, 3, (4, 7, 5)).astype(np.int32)      # many ties
    for axis in (0, -1, -2):
        for keepdims in (0, 1):
            for last in (0, 1):
                out = arg(op, x, axis, keepdims, last)[0]
                assert out.dtype == np.int64


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, ml_dtypes.bfloat16, np.int8, np.uint8,
                                   np.int16, np.int64, np.uint64])
def test_arg_dtypes(op, dtype, rng):
    x = (rng.standard_normal((5, 6)) * 50).astype(dtype)
    arg(op, x, 1, 0, 1)


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
def test_arg_nan_inf_strided_long(op, rng):
    x = rng.standard_normal((3, 8)).astype(np.float32)
    x[0, [2, 5]] = np.nan                 # the first (or last) NaN wins, as numpy
    x[1, :] = -np.inf
    x[2, :] = np.inf
    for last in (0, 1):
        arg(op, x, 1, 1, last)
    big = rng.standard_normal((7, 2100)).astype(np.float32)
    arg(op, big, 1, 0)
    arg(op, big[::2, ::-3].T, 0, 1, 1)
    arg(op, big[:, :300], 0, 0)


def test_arg_errors_and_interp(device, rng):
    with pytest.raises(ArgumentError, match="out of range"):
        arg("ArgMax", np.zeros((2, 3), np.float32), 2)
    with pytest.raises(ArgumentError, match="empty"):
        arg("ArgMin", np.zeros((2, 0), np.float32), 1)
    with pytest.raises(UnsupportedError, match="bool"):
        arg("ArgMax", np.zeros((2, 3), bool), 1)
    x = rng.integers(0, 3, (3, 4, 5)).astype(np.float32)
    arg("ArgMax", x, 1, 1, 1, device=device.name)
    arg("ArgMin", x.transpose(2, 1, 0), -1, 0, 0, device=device.name)
