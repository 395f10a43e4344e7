"""ky.ops.conv2d against torch.nn.functional.conv2d (float64 reference)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import kaiyuan as ky
from kaiyuan import ops

from .conftest import assert_close, rand

# (N, C, H, W, OC, KH, KW, stride, padding, dilation, groups)
CASES = [
    (1, 3, 7, 9, 5, 3, 3, 1, 1, 1, 1),
    (2, 4, 9, 7, 6, 3, 3, 2, 1, 1, 1),
    (1, 6, 11, 10, 4, 3, 2, (2, 1), (1, 0), (2, 1), 2),
    (1, 4, 8, 8, 4, 3, 3, 1, 1, 1, 4),          # depthwise
    (2, 5, 6, 6, 7, 1, 1, 1, 0, 1, 1),          # 1x1
    (1, 2, 5, 5, 3, 5, 5, 1, 2, 1, 1),          # kernel as large as the image, padding 2
    (1, 8, 6, 7, 4, 3, 3, 3, 3, 2, 2),          # stride > kernel footprint, heavy padding
]


def ref_conv(x, w, b, **kw):
    t = lambda a: None if a is None else torch.from_numpy(np.asarray(a, dtype=np.float64))  # noqa: E731
    return F.conv2d(t(x), t(w), t(b), **kw)


@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_stride_padding_dilation_groups(device, rng, case):
    N, C, H, W, OC, KH, KW, s, p, d, g = case
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((OC, C // g, KH, KW)).astype(np.float32)
    b = rng.standard_normal(OC).astype(np.float32)
    out = ops.conv2d(x, w, b, stride=s, padding=p, dilation=d, groups=g)
    assert_close(out, ref_conv(x, w, b, stride=s, padding=p, dilation=d, groups=g), "fp32", scale=10)


@pytest.mark.parametrize("dtype", ["fp32", "fp64", "fp16", "bf16"])
def test_dtypes(device, rng, dtype):
    x, w = rand(rng, (1, 4, 6, 5), dtype), rand(rng, (3, 4, 3, 3), dtype)
    out = ops.conv2d(x, w, padding=1)
    assert out.dtype == x.dtype
    assert_close(out, ref_conv(x.astype(np.float64), w.astype(np.float64), None, padding=1), dtype, scale=6)


def test_channels_past_one_block_and_strided_input(device, rng):
    C = 40 if device.name == "interp" else 100   # more than one BK block, not a multiple of it
    big = rng.standard_normal((2, C, 14, 12)).astype(np.float32)
    x = big[:, :, ::2, 1::2]                     # non-contiguous view: read in place
    w = rng.standard_normal((9, C, 3, 3)).astype(np.float32)
    assert_close(ops.conv2d(x, w, padding=1), ref_conv(x, w, None, padding=1), "fp32", scale=30)


def test_unbatched_same_padding_and_tensors(device, rng):
    x = rng.standard_normal((3, 6, 5)).astype(np.float32)
    w = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    out = ops.conv2d(ky.tensor(x), ky.tensor(w), padding="same")
    assert isinstance(out, ky.Tensor) and out.shape == (2, 6, 5)
    assert_close(out, ref_conv(x, w, None, padding="same"), "fp32", scale=6)


def test_errors(device):
    x, w = np.ones((1, 4, 5, 5), np.float32), np.ones((2, 4, 3, 3), np.float32)
    with pytest.raises(ky.UnsupportedError):
        ops.conv2d(x.astype(np.int8), w.astype(np.int8))
    with pytest.raises(ky.ArgumentError):
        ops.conv2d(x, w, groups=3)
    with pytest.raises(ky.ArgumentError):
        ops.conv2d(x, np.ones((2, 4, 7, 7), np.float32))      # kernel larger than the input
    with pytest.raises(ky.ArgumentError):
        ops.conv2d(x[0, 0], w)
    with pytest.raises(ky.UnsupportedError):
        ops.conv2d(x, np.ones((2, 4, 2, 2), np.float32), padding="same")


# Paths of the implicit-GEMM kernel (tile = output channels x flat pixels, K = (c, kh, kw)):
# the phase-split padded copy (strided, padded), the in-place read (1x1, stride 1, no padding),
# several tiles along every GEMM dim with a K that is not a multiple of BLOCK_K, bias, batch > 1.
# (N, C, H, W, OC, KH, KW, stride, padding, dilation, groups)
PATH_CASES = [
    (2, 12, 13, 13, 72, 3, 3, 1, 1, 1, 1),      # OC > BLOCK_M, pixels > BLOCK_N, K = 108
    (1, 3, 20, 18, 8, 7, 7, 2, 3, 1, 1),        # the ResNet stem's shape class: 7x7 stride 2 pad 3
    (2, 8, 9, 10, 6, 1, 1, 2, 0, 1, 1),         # 1x1 stride 2 (downsample): phase-split copy
    (1, 6, 12, 11, 9, 3, 2, (1, 2), (2, 1), (2, 3), 3),
    (2, 70, 6, 5, 66, 1, 1, 1, 0, 1, 1),        # 1x1 read in place, K = 70 (a K tail)
    (2, 5, 9, 11, 6, 3, 3, 1, (0, 1), (1, 2), 1),  # rows sharing one pad zone, pad_w < dil_w * (KW - 1)
    (1, 3, 6, 4, 5, 3, 3, 1, (1, 2), 1, 1),     # pad_w > dil_w * (KW - 1): two pad zones per row
    (1, 3, 10, 96, 8, 7, 7, 2, 3, 1, 1),        # stem-like, OW = 48: one tile per output row (ROWS)
    (2, 4, 5, 64, 6, 3, 3, 1, 1, 1, 1),         # OW = 64 at stride 1: ROWS
    (1, 2, 3, 144, 5, 3, 3, 1, 1, 1, 1),        # OW = 144: three tiles per output row
]


@pytest.mark.parametrize("case", PATH_CASES, ids=[f"path{i}" for i in range(len(PATH_CASES))])
def test_kernel_paths(device, rng, case):
    N, C, H, W, OC, KH, KW, s, p, d, g = case
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((OC, C // g, KH, KW)).astype(np.float32)
    b = rng.standard_normal(OC).astype(np.float32)
    out = ops.conv2d(x, w, b, stride=s, padding=p, dilation=d, groups=g)
    # fp32 accumulation over K <= 147 terms: 2e-5 of the largest reference value
    assert_close(out, ref_conv(x, w, b, stride=s, padding=p, dilation=d, groups=g), "fp32")


def test_row_tiling_is_chosen_where_it_drops_fewer_columns():
    """ROWS (tiles inside one output row) for the ResNet stem (OW = 112, Wq = 115) and the ROWS
    path cases above; flat tiles where a row's last tile would compute more dropped columns."""
    from kaiyuan.ops.conv import _row_tiles
    assert _row_tiles(112, 115) and _row_tiles(48, 51) and _row_tiles(64, 65) and _row_tiles(144, 145)
    assert not _row_tiles(56, 57) and not _row_tiles(28, 29) and not _row_tiles(9, 12)
    assert not _row_tiles(64, 64)                         # no dropped columns at all


def test_strided_views_in_place_path_and_weight(device, rng):
    # a 1x1 conv whose input rows are not contiguous (the in-place path needs sxh == W * sxw: here
    # the copy is taken) and a weight whose (C, KH, KW) dims do not fold into one K dim (copied)
    big = rng.standard_normal((1, 5, 8, 14)).astype(np.float32)
    x = big[:, :, :, ::2]
    w = rng.standard_normal((4, 5, 1, 1)).astype(np.float32)
    assert_close(ops.conv2d(x, w), ref_conv(x, w, None), "fp32")
    w3 = np.ascontiguousarray(rng.standard_normal((4, 5, 3, 3)).astype(np.float32).transpose(0, 1, 3, 2))
    w3 = w3.transpose(0, 1, 3, 2)                # strides (45, 9, 1, 3): not one K dim
    assert_close(ops.conv2d(big, w3, padding=1), ref_conv(big, w3, None, padding=1), "fp32")


def test_strided_copy_reads_views_with_nan_around_them(device, rng):
    """The stride-2 copy reads its rows' ends unmasked, into the neighbouring elements, wherever
    those lie inside the input's span (conv2d_prep_kernel): a view with NaN all around it, and one
    with a negative stride (its span is not read past at all), must still give the plain result."""
    big = np.full((2, 6, 20, 23), np.nan, np.float32)
    x = big[:, 1:4, 3:16, 5:19]
    x[...] = rng.standard_normal(x.shape).astype(np.float32)
    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    ref = ref_conv(np.ascontiguousarray(x), w, None, stride=2, padding=1)
    assert_close(ops.conv2d(x, w, stride=2, padding=1), ref, "fp32")
    flipped = np.ascontiguousarray(x[:, :, ::-1])[:, :, ::-1]          # strides (.., -W, 1)
    assert_close(ops.conv2d(flipped, w, stride=2, padding=1), ref, "fp32")


EPILOGUE_CASES = [  # (shape N, C, H, W, OC, k, stride, padding, activation, residual strided?)
    ((1, 3, 7, 9), 5, 3, 1, 1, "relu", False),     # padded copy, per-row stores
    ((2, 4, 6, 6), 6, 1, 1, 0, None, False),       # 1x1 in place, flat stores, residual only
    ((1, 4, 8, 8), 3, 3, 2, 1, "gelu", True),      # strided residual view
    ((1, 2, 5, 5), 3, 3, 1, 1, "silu", False),
    ((1, 3, 4, 64), 4, 3, 1, 1, "relu", True),     # one tile per output row (ROWS), strided residual
]


@pytest.mark.parametrize("case", EPILOGUE_CASES, ids=[f"case{i}" for i in range(len(EPILOGUE_CASES))])
def test_fused_epilogue(device, rng, case):
    """activation(conv + bias + residual) in the kernel's store, against torch in float64."""
    (N, C, H, W), OC, k, s, p, act, strided = case
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((OC, C, k, k)).astype(np.float32)
    b = rng.standard_normal(OC).astype(np.float32)
    y = ref_conv(x, w, b, stride=s, padding=p)
    shape = tuple(y.shape)
    r = rng.standard_normal(shape[:3] + (2 * shape[3],)).astype(np.float32)[..., ::2] if strided \
        else rng.standard_normal(shape).astype(np.float32)
    y = y + torch.from_numpy(np.asarray(r, np.float64))
    y = {"relu": F.relu, "gelu": F.gelu, "silu": F.silu, None: lambda t: t}[act](y)
    out = ops.conv2d(x, w, b, stride=s, padding=p, residual=r, activation=act)
    assert_close(out, y, "fp32", scale=10)


def test_fused_epilogue_errors(device, rng):
    x = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    with pytest.raises(ky.UnsupportedError, match="activation 'tanh'"):
        ops.conv2d(x, w, padding=1, activation="tanh")
    with pytest.raises(ky.ArgumentError, match="residual must have the output's shape"):
        ops.conv2d(x, w, padding=1, residual=np.zeros((1, 3, 4, 5), np.float32))
    with pytest.raises(ky.ArgumentError, match="residual is fp64, the output fp32"):
        ops.conv2d(x, w, padding=1, residual=np.zeros((1, 3, 4, 4), np.float64))
