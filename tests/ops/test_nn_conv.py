"""Conv and ConvTranspose against onnx's reference evaluator (group ConvTranspose and output_shape,
which that evaluator gets wrong, against torch / onnxruntime).

Tolerances: fp32 rtol 1e-4 / atol 1e-4 (implicit GEMM, fp32 accumulation in another order);
fp64 1e-10; fp16 2e-2 (the reference computes in fp16). Interp runs small shapes.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kaiyuan.runtime.errors import ArgumentError, UnsupportedError

from .conftest import rand
from .onnx_node import check, run_kaiyuan
from .test_nn import run_ort

F32 = {"rtol": 1e-4, "atol": 1e-4}

# (X shape, W shape, with bias, attributes)
CONV_CASES = [
    ((1, 3, 7, 9), (5, 3, 3, 3), True, {"pads": [1, 1, 1, 1]}),
    ((2, 4, 7, 9), (6, 2, 3, 2), False, {"pads": [1, 0, 2, 1], "strides": [2, 1], "dilations": [1, 2], "group": 2}),
    ((1, 3, 8, 8), (4, 3, 2, 2), True, {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ((1, 3, 8, 7), (4, 3, 4, 3), False, {"auto_pad": "SAME_LOWER"}),
    ((1, 3, 8, 7), (4, 3, 4, 3), True, {"auto_pad": "VALID", "kernel_shape": [4, 3]}),
    ((1, 4, 6, 6), (4, 1, 3, 3), True, {"pads": [1, 1, 1, 1], "group": 4}),             # depthwise
    ((2, 5, 5, 4), (3, 5, 1, 1), False, {}),                                              # 1x1
    ((2, 3, 11), (4, 3, 3), True, {"pads": [2, 1], "strides": [2]}),                      # 1-D, asymmetric
    ((1, 4, 13), (2, 2, 4), False, {"auto_pad": "SAME_UPPER", "dilations": [2], "group": 2}),
    ((1, 2, 1, 1), (3, 2, 1, 1), True, {}),                                               # size 1
]
INTERP_CONV = [0, 1, 7]


@pytest.mark.parametrize("case", range(len(CONV_CASES)))
def test_conv_attributes(device, rng, case):
    if device.name == "interp" and case not in INTERP_CONV:
        pytest.skip("cpu only: interp runs a subset")
    xs, ws, bias, attrs = CONV_CASES[case]
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    inputs = [f(*xs), f(*ws)] + ([f(ws[0])] if bias else [])
    check("Conv", inputs, attrs, device=device.name, **F32)


@pytest.mark.parametrize("dtype", ["fp64", "fp16"])
def test_conv_dtypes(rng, dtype):
    x, w, b = rand(rng, (1, 3, 6, 5), dtype), rand(rng, (2, 3, 3, 3), dtype), rand(rng, (2,), dtype)
    tol = 1e-10 if dtype == "fp64" else 2e-2
    check("Conv", [x, w, b], {"pads": [0, 1, 1, 0]}, rtol=tol, atol=tol * 5)


def test_conv_non_contiguous_input(device, rng):
    x = rng.standard_normal((1, 3, 10, 9)).astype(np.float32)[:, :, ::2]
    w = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    check("Conv", [x, w], {"pads": [1, 2, 0, 1]}, device=device.name, **F32)


def test_conv_errors(rng):
    x, w = np.zeros((1, 4, 5, 5), np.float32), np.zeros((2, 4, 3, 3), np.float32)
    with pytest.raises(UnsupportedError, match="3-D convolution"):
        run_kaiyuan("Conv", [np.zeros((1, 1, 3, 3, 3), np.float32), np.zeros((1, 1, 1, 1, 1), np.float32)])
    with pytest.raises(ArgumentError, match="kernel_shape"):
        run_kaiyuan("Conv", [x, w], {"kernel_shape": [2, 2]})
    with pytest.raises(ArgumentError, match="group"):
        run_kaiyuan("Conv", [x, w], {"group": 3})
    with pytest.raises(ArgumentError, match="does not fit"):
        run_kaiyuan("Conv", [np.zeros((1, 4, 2, 2), np.float32), w])
    with pytest.raises(UnsupportedError, match="auto_pad"):
        run_kaiyuan("Conv", [x, w], {"auto_pad": "SAME"})
    with pytest.raises(UnsupportedError, match="float16"):
        run_kaiyuan("Conv", [x, w.astype(np.float16)])


# --------------------------------------------------------------------------------- ConvTranspose

CONVT_CASES = [
    ((1, 3, 5, 4), (3, 2, 3, 3), False, {}),
    ((2, 3, 5, 4), (3, 2, 3, 2), True, {"strides": [2, 3], "pads": [1, 0, 0, 1], "output_padding": [1, 1]}),
    ((1, 2, 5, 4), (2, 3, 3, 3), False, {"strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    ((1, 2, 5, 4), (2, 3, 3, 3), True, {"strides": [2, 2], "auto_pad": "SAME_LOWER", "dilations": [2, 1]}),
    ((2, 3, 7), (3, 2, 3), True, {"strides": [3], "pads": [1, 2]}),                   # 1-D
    ((1, 4, 3, 3), (4, 1, 4, 4), False, {"strides": [2, 2], "pads": [1, 1, 1, 1]}),   # the usual 2x upsample
    ((1, 1, 1, 1), (1, 2, 1, 1), True, {}),
]
INTERP_CONVT = [1, 4]


@pytest.mark.parametrize("case", range(len(CONVT_CASES)))
def test_conv_transpose_attributes(device, rng, case):
    if device.name == "interp" and case not in INTERP_CONVT:
        pytest.skip("cpu only: interp runs a subset")
    xs, ws, bias, attrs = CONVT_CASES[case]
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    inputs = [f(*xs), f(*ws)] + ([f(ws[1])] if bias else [])
    check("ConvTranspose", inputs, attrs, device=device.name, **F32)


@pytest.mark.parametrize("attrs", [{"strides": [2, 2], "output_shape": [10, 8]},
                                   {"strides": [2, 3], "output_shape": [11, 13], "auto_pad": "SAME_UPPER"},
                                   {"strides": [1, 2], "output_shape": [5, 9], "pads": [1, 1, 1, 1]}])
def test_conv_transpose_output_shape(device, rng, attrs):
    x, w = rng.standard_normal((1, 2, 5, 4)).astype(np.float32), rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    got = run_kaiyuan("ConvTranspose", [x, w], attrs, device=device.name)[0]
    np.testing.assert_allclose(got, run_ort("ConvTranspose", [x, w], attrs)[0], **F32)


def test_conv_transpose_groups(device, rng):
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((2, 4, 5, 6), (4, 3, 3, 2), (6,)))
    attrs = {"group": 2, "strides": [2, 1], "pads": [1, 0, 1, 0], "dilations": [1, 2]}
    got = run_kaiyuan("ConvTranspose", [x, w, b], attrs, device=device.name)[0]
    ref = F.conv_transpose2d(*(torch.from_numpy(a.astype(np.float64)) for a in (x, w, b)), stride=(2, 1),
                             padding=(1, 0), dilation=(1, 2), groups=2).numpy()
    np.testing.assert_allclose(got, ref, **F32)


@pytest.mark.parametrize("dtype", ["fp64", "fp16"])
def test_conv_transpose_dtypes(rng, dtype):
    x, w, b = rand(rng, (1, 3, 4, 5), dtype), rand(rng, (3, 2, 3, 3), dtype), rand(rng, (2,), dtype)
    tol = 1e-10 if dtype == "fp64" else 2e-2
    check("ConvTranspose", [x, w, b], {"strides": [2, 2]}, rtol=tol, atol=tol * 5)


def test_conv_transpose_errors():
    x, w = np.zeros((1, 4, 5, 5), np.float32), np.zeros((4, 2, 3, 3), np.float32)
    with pytest.raises(ArgumentError, match="W.shape"):
        run_kaiyuan("ConvTranspose", [x, np.zeros((3, 2, 3, 3), np.float32)])
    with pytest.raises(ArgumentError, match="output_padding"):
        run_kaiyuan("ConvTranspose", [x, w], {"output_padding": [1]})
    with pytest.raises(ArgumentError, match="empty"):
        run_kaiyuan("ConvTranspose", [x, w], {"pads": [4, 4, 4, 4]})
    with pytest.raises(UnsupportedError, match="3-D"):
        run_kaiyuan("ConvTranspose", [np.zeros((1, 1, 2, 2, 2), np.float32), np.zeros((1, 1, 1, 1, 1), np.float32)])
