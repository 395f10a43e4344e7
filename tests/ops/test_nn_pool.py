"""MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool and LRN against onnx's reference evaluator.

Where that evaluator is wrong (ceil_mode windows whose extra padding it spreads over both ends;
GlobalMaxPool of other than 2-D spatial inputs) the tests compare with onnxruntime or numpy instead.
Tolerances: max pooling exact; averages rtol 1e-5 (fp32), 1e-3 (fp16), 1e-2 (bf16).
"""

import numpy as np
import pytest

from kaiyuan.runtime.errors import ArgumentError, UnsupportedError

from .conftest import rand
from .onnx_node import check, run_kaiyuan, run_reference
from .test_nn import run_ort

T = {"rtol": 1e-5, "atol": 1e-6}

# (op, X shape, attributes, opset)
POOL_CASES = [
    ("MaxPool", (1, 3, 7, 9), {"kernel_shape": [3, 3]}, 18),
    ("MaxPool", (2, 3, 7, 9), {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 0, 1, 1]}, 18),
    ("MaxPool", (2, 3, 7, 9), {"kernel_shape": [3, 2], "strides": [2, 1], "dilations": [2, 2], "ceil_mode": 1}, 18),
    ("MaxPool", (2, 3, 7, 9), {"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER", "strides": [2, 2]}, 18),
    ("MaxPool", (1, 2, 6, 6), {"kernel_shape": [2, 2], "auto_pad": "VALID", "strides": [2, 2]}, 18),
    ("MaxPool", (2, 3, 11), {"kernel_shape": [3], "strides": [2], "pads": [1, 1]}, 18),
    ("AveragePool", (2, 3, 7, 9), {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 0, 1, 1]}, 18),
    ("AveragePool", (2, 3, 7, 9), {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 0, 1, 1],
                                   "count_include_pad": 1}, 18),
    ("AveragePool", (2, 3, 7, 9), {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, 18),
    ("AveragePool", (2, 3, 8, 9), {"kernel_shape": [3, 3], "auto_pad": "SAME_LOWER"}, 18),
    ("AveragePool", (2, 3, 8, 9), {"kernel_shape": [2, 3], "dilations": [2, 1]}, 19),
    ("AveragePool", (2, 3, 13), {"kernel_shape": [4], "strides": [3], "pads": [2, 1], "count_include_pad": 1}, 18),
    ("AveragePool", (1, 1, 1, 1), {"kernel_shape": [1, 1]}, 18),
]
INTERP_POOL = [1, 5, 7, 11]


@pytest.mark.parametrize("case", range(len(POOL_CASES)))
def test_pool_attributes(device, rng, case):
    if device.name == "interp" and case not in INTERP_POOL:
        pytest.skip("cpu only: interp runs a subset")
    op, shape, attrs, opset = POOL_CASES[case]
    check(op, [rng.standard_normal(shape).astype(np.float32)], attrs, opset=opset, device=device.name, **T)


@pytest.mark.parametrize("include_pad", [0, 1])
@pytest.mark.parametrize("pads", [[1, 1, 1, 1], [0, 0, 0, 0]])
def test_ceil_mode_windows_against_onnxruntime(device, rng, include_pad, pads):
    """The last window overhangs the input (by 2 without pads: the reference evaluator shifts it)."""
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    attrs = {"kernel_shape": [4, 4], "strides": [3, 3], "ceil_mode": 1, "pads": pads,
             "count_include_pad": include_pad}
    got = run_kaiyuan("AveragePool", [x], attrs, device=device.name)[0]
    np.testing.assert_allclose(got, run_ort("AveragePool", [x], attrs)[0], **T)
    del attrs["count_include_pad"]
    got = run_kaiyuan("MaxPool", [x], attrs, device=device.name)[0]
    np.testing.assert_array_equal(got, run_ort("MaxPool", [x], attrs)[0])


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_strided_windows_of_a_view_with_nan_around_it(device, rng, op):
    """At stride 2 max pooling reads its rows' ends unmasked, into the neighbouring elements,
    wherever those lie inside the input's span (pool2d_kernel), and average pooling gathers through
    clamped indices: nothing outside the windows may reach the result. The planes in the middle
    take the first path, the first and last clamp."""
    big = np.full((2, 5, 14, 17), np.nan, np.float32)
    x = big[:, 1:4, 2:11, 3:13]
    x[...] = rng.standard_normal(x.shape).astype(np.float32)
    attrs = {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}
    got = run_kaiyuan(op, [x], attrs, device=device.name)[0]
    np.testing.assert_allclose(got, run_reference(op, [np.ascontiguousarray(x)], attrs)[0], **T)


@pytest.mark.parametrize("order", [0, 1])
def test_max_pool_indices(device, rng, order):
    x = rng.standard_normal((2, 3, 7, 9)).astype(np.float32)
    attrs = {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 0, 1, 1], "storage_order": order}
    got = run_kaiyuan("MaxPool", [x], {**attrs, "_num_outputs": 2}, device=device.name)
    want = run_reference("MaxPool", [x], attrs, n_outputs=2)
    assert got[1].dtype == np.int64
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("dtype", ["fp16", "bf16", "fp64", "i8", "u8"])
def test_pool_dtypes(rng, dtype):
    x = rand(rng, (1, 2, 6, 5), dtype) if dtype != "u8" else rng.integers(0, 256, (1, 2, 6, 5)).astype(np.uint8)
    attrs = {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}
    check("MaxPool", [x], attrs)
    check("GlobalMaxPool", [x])
    if dtype not in ("i8", "u8"):
        tol = {"fp16": 1e-3, "bf16": 1e-2, "fp64": 1e-12}[dtype]
        check("AveragePool", [x], attrs, rtol=tol, atol=tol)
        check("GlobalAveragePool", [x], rtol=tol, atol=tol)


def test_global_pools(device, rng):
    L = 40 if device.name == "interp" else 1500  # cpu: longer than one 1024-wide chunk
    x = rng.standard_normal((2, 3, 7, 9)).astype(np.float32)
    check("GlobalAveragePool", [x], device=device.name, **T)
    check("GlobalMaxPool", [x], device=device.name, **T)
    x4 = rng.standard_normal((2, 3, 8, 6)).astype(np.float32)[:, :, ::2]  # strided planes
    # 1-D and 3-D spatial dims: against numpy (the reference evaluator's GlobalMaxPool is 2-D only)
    for shape in ((2, 3, L), (2, 3, 2, 3, 4), (1, 1, 1, 1), None):
        x = x4 if shape is None else rng.standard_normal(shape).astype(np.float32)
        axes = tuple(range(2, x.ndim))
        np.testing.assert_array_equal(run_kaiyuan("GlobalMaxPool", [x], device=device.name)[0],
                                      x.max(axis=axes, keepdims=True))
        np.testing.assert_allclose(run_kaiyuan("GlobalAveragePool", [x], device=device.name)[0],
                                   x.astype(np.float64).mean(axis=axes, keepdims=True), **T)


def test_pool_errors():
    x = np.zeros((1, 2, 4, 4), np.float32)
    with pytest.raises(UnsupportedError, match="3-D pooling"):
        run_kaiyuan("MaxPool", [np.zeros((1, 1, 3, 3, 3), np.float32)], {"kernel_shape": [2, 2, 2]})
    with pytest.raises(ArgumentError, match="kernel_shape"):
        run_kaiyuan("MaxPool", [x])
    with pytest.raises(ArgumentError, match="kernel_shape"):
        run_kaiyuan("AveragePool", [x], {"kernel_shape": [2]})
    with pytest.raises(ArgumentError, match="does not fit"):
        run_kaiyuan("AveragePool", [x], {"kernel_shape": [5, 5]})
    with pytest.raises(UnsupportedError, match="int8"):
        run_kaiyuan("AveragePool", [x.astype(np.int8)], {"kernel_shape": [2, 2]})
    with pytest.raises(UnsupportedError, match="dilations"):  # AveragePool has them only from opset 19
        run_kaiyuan("AveragePool", [x], {"kernel_shape": [2, 2], "dilations": [1, 1]}, opset=18)
    with pytest.raises(ArgumentError, match="spatial"):
        run_kaiyuan("GlobalAveragePool", [np.zeros((2, 3), np.float32)])


# ------------------------------------------------------------------------------------------ LRN
# (onnx's reference LRN walks the batch dim instead of the channels: numpy and onnxruntime here)


def ref_lrn(x, size, alpha=1e-4, beta=0.75, bias=1.0):
    x = x.astype(np.float64)
    sq = np.zeros_like(x)
    C = x.shape[1]
    for c in range(C):
        lo, hi = max(0, c - (size - 1) // 2), min(C, c + -(-(size - 1) // 2) + 1)
        sq[:, c] = (x[:, lo:hi] ** 2).sum(axis=1)
    return x / (bias + alpha / size * sq) ** beta


@pytest.mark.parametrize("size", [1, 3, 4])
def test_lrn(device, rng, size):
    x = rng.standard_normal((2, 5, 3, 4)).astype(np.float32)
    attrs = {"size": size, "alpha": 0.3, "beta": 0.6, "bias": 2.0}
    got = run_kaiyuan("LRN", [x], attrs, device=device.name)[0]
    np.testing.assert_allclose(got, ref_lrn(x, **attrs), rtol=1e-5, atol=1e-6)
    if size % 2:  # onnxruntime takes odd sizes only
        np.testing.assert_allclose(got, run_ort("LRN", [x], attrs)[0], rtol=1e-5, atol=1e-6)


def test_lrn_layouts_and_dtypes(rng):
    x3 = rng.standard_normal((1, 6, 9)).astype(np.float32)
    np.testing.assert_allclose(run_kaiyuan("LRN", [x3], {"size": 5})[0], ref_lrn(x3, 5), rtol=1e-5, atol=1e-6)
    x = rng.standard_normal((1, 4, 6, 8)).astype(np.float32)[:, :, ::2, ::3]  # spatial dims do not fold
    np.testing.assert_allclose(run_kaiyuan("LRN", [x], {"size": 3, "alpha": 0.5})[0], ref_lrn(x, 3, 0.5),
                               rtol=1e-5, atol=1e-6)
    for dtype, tol in (("fp16", 2e-3), ("fp64", 1e-6)):
        xd = rand(rng, (1, 4, 3, 3), dtype)
        y = run_kaiyuan("LRN", [xd], {"size": 3, "alpha": 0.5})[0]
        assert y.dtype == xd.dtype
        np.testing.assert_allclose(y.astype(np.float64), ref_lrn(xd, 3, 0.5), rtol=tol, atol=tol)
    with pytest.raises(UnsupportedError, match="size"):
        run_kaiyuan("LRN", [x])
    with pytest.raises(ArgumentError, match="spatial"):
        run_kaiyuan("LRN", [np.zeros((2, 3), np.float32)], {"size": 3})
