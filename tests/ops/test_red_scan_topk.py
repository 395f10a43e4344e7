"""ONNX CumSum and TopK against onnx's reference evaluator.

Tolerances: CumSum fp32 1e-5 relative / 1e-5 absolute (values of order sqrt(n)); fp16/bf16 are
compared with an fp64 cumsum (the reference accumulates in the narrow type, kaiyuan in fp32)
at 1e-2 / 4e-2 relative to the largest |sum|. Integers, and every TopK output (values are
copied, never computed), are exact.
"""

import ml_dtypes
import numpy as np
import pytest

from kaiyuan.runtime.errors import ArgumentError, UnsupportedError

from .onnx_node import check, run_kaiyuan


def cumsum(x, axis, exclusive=0, reverse=0, device="cpu", opset=14):
    return check("CumSum", [x, np.array(axis, np.int64)], {"exclusive": exclusive, "reverse": reverse},
                 opset=opset, rtol=1e-5, atol=1e-5, device=device)[0]


def test_cumsum_axes_and_modes(rng):
    x = rng.standard_normal((3, 5, 7)).astype(np.float32)
    for axis in (0, 1, 2, -1):
        for exclusive in (0, 1):
            for reverse in (0, 1):
                cumsum(x, axis, exclusive, reverse)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint32, np.uint64, np.float64])
def test_cumsum_dtypes(dtype, rng):
    x = rng.integers(0, 50, (4, 6)).astype(dtype)
    cumsum(x, 1, 0, 1, opset=13)
    cumsum(x, 0, 1, 0, opset=13)
    got = cumsum(np.array([2**31 - 1, 1, 5], np.int32), 0) if dtype == np.int32 else None
    if got is not None:
        assert got.tolist() == [2**31 - 1, -(2**31), -(2**31) + 5]     # int32 wraps, as ONNX


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16])
def test_cumsum_narrow_floats(dtype, rng):
    x = rng.standard_normal((3, 200)).astype(dtype)
    got = run_kaiyuan("CumSum", [x, np.array(1, np.int32)], {"reverse": 1}, opset=14)[0]
    want = np.flip(np.cumsum(np.flip(x.astype(np.float64), 1), 1), 1)
    assert got.dtype == x.dtype
    tol = 1e-2 if dtype == np.float16 else 4e-2
    np.testing.assert_allclose(got.astype(np.float64), want, atol=tol * np.abs(want).max())
    with pytest.raises(UnsupportedError, match="float16"):
        run_kaiyuan("CumSum", [x, np.array(1, np.int32)], {}, opset=13)


def test_cumsum_strided_long_and_empty(rng):
    base = rng.standard_normal((8, 9, 6)).astype(np.float32)
    cumsum(base.transpose(2, 0, 1), 1, 1, 1)
    cumsum(base[::-2, 1::2], 0, 0, 1)
    long = rng.standard_normal((2, 3000)).astype(np.float32)
    check("CumSum", [long, np.array(1, np.int64)], {"exclusive": 1}, opset=14, rtol=1e-4, atol=1e-3)
    check("CumSum", [long.T, np.array(0, np.int64)], {"reverse": 1}, opset=14, rtol=1e-4, atol=1e-3)
    assert cumsum(np.zeros((3, 0), np.float32), 1, 1).shape == (3, 0)
    assert cumsum(np.zeros((0, 3), np.float32), 1, 1, 1).shape == (0, 3)


def test_cumsum_errors_and_interp(device, rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    with pytest.raises(ArgumentError, match="out of range"):
        cumsum(x, 2)
    with pytest.raises(ArgumentError, match="0-d"):
        run_kaiyuan("CumSum", [x, np.array([0, 1], np.int64)], {}, opset=14)
    with pytest.raises(UnsupportedError, match="int8"):
        cumsum(x.astype(np.int8), 0)
    for exclusive, reverse in ((0, 0), (1, 1)):
        cumsum(x, 1, exclusive, reverse, device=device.name)
        cumsum(x.T, 1, exclusive, reverse, device=device.name)


# ------------------------------------------------------------------------------------------- TopK
def topk(x, k, axis=-1, largest=1, device="cpu", sorted_=1):
    out = check("TopK", [x, np.array([k], np.int64)], {"axis": axis, "largest": largest, "sorted": sorted_},
                opset=13, device=device)
    assert out[1].dtype == np.int64
    return out


def test_topk_axes_k_largest_smallest(rng):
    x = rng.standard_normal((4, 6, 9)).astype(np.float32)
    for axis in (-1, 0, 1):
        for largest in (0, 1):
            for k in (1, 4, x.shape[axis]):
                topk(x, k, axis, largest)
    topk(x, 3, sorted_=0)


def test_topk_ties_keep_index_order(rng):
    x = rng.integers(0, 3, (5, 40)).astype(np.int32)     # many equal values
    for largest in (0, 1):
        topk(x, 7, 1, largest)
        topk(x, 40, 1, largest)
        topk(x, 3, 0, largest)


@pytest.mark.parametrize("dtype", [np.float64, np.float16, ml_dtypes.bfloat16, np.int8, np.uint8, np.int16,
                                   np.int64, np.uint32, np.uint64])
def test_topk_dtypes(dtype, rng):
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        x = rng.integers(info.min, info.max, (3, 11), dtype=dtype, endpoint=True)
        x[0, :3] = [info.min, info.max, info.max]        # extremes and a tie at the top
    else:
        x = rng.standard_normal((3, 11)).astype(dtype)
    topk(x, 5, 1, 1)
    topk(x, 4, 1, 0)


def test_topk_special_floats(rng):
    x = rng.standard_normal((3, 10)).astype(np.float32)
    x[0, [1, 6]] = np.nan                  # NaN above +inf, in index order
    x[1, [0, 4]] = [-0.0, 0.0]             # -0.0 == +0.0: index order decides
    x[1, 7] = np.inf
    x[2, [2, 3]] = -np.inf
    for largest in (0, 1):
        topk(x, 6, 1, largest)


def test_topk_long_rows_and_strided(rng):
    x = rng.standard_normal((3, 5000)).astype(np.float32)
    topk(x, 100, 1, 1)
    topk(x[:, ::-7], 300, 1, 0)
    topk(x[:, :2000].T, 2, 0, 1)


def test_topk_empty_and_errors(rng):
    x = rng.standard_normal((3, 5)).astype(np.float32)
    values, indices = topk(x, 0, 1)
    assert values.shape == (3, 0) and indices.shape == (3, 0)
    assert topk(np.zeros((0, 5), np.float32), 2, 1)[0].shape == (0, 2)
    with pytest.raises(ArgumentError, match="K=6"):
        topk(x, 6, 1)
    with pytest.raises(ArgumentError, match="K=-1"):
        topk(x, -1, 1)
    with pytest.raises(ArgumentError, match="out of range"):
        topk(x, 1, 2)
    with pytest.raises(UnsupportedError, match="bool"):
        topk(x > 0, 1, 1)


def test_topk_interp(device, rng):
    x = rng.integers(0, 4, (3, 7, 5)).astype(np.float32)
    topk(x, 3, 1, 1, device=device.name)
    topk(x.transpose(2, 0, 1), 2, -1, 0, device=device.name)
