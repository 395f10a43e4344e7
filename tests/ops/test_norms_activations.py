"""softmax, layer_norm, rms_norm, gelu, silu against torch.nn.functional (float64 reference)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import kaiyuan as ky
from kaiyuan import ops

from .conftest import assert_close, rand


def t64(x):
    return None if x is None else torch.from_numpy(np.asarray(x, dtype=np.float64))


DTYPES = ["fp32", "fp64", "fp16", "bf16"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax(device, rng, dtype):
    x = rand(rng, (3, 4, 37), dtype)
    for dim in (-1, 0, 1):
        out = ops.softmax(x, dim)
        assert out.dtype == x.dtype
        assert_close(out, F.softmax(t64(x), dim), dtype)
    assert_close(ops.softmax(x.transpose(2, 0, 1)[::2], dim=1), F.softmax(t64(x.transpose(2, 0, 1)[::2]), 1), dtype)


def test_long_rows_take_the_chunked_paths(device, rng):
    x = rng.standard_normal((2, 9001)).astype(np.float32) * 5
    x[1, :5000] = -np.inf                      # chunks that are entirely -inf
    assert_close(ops.softmax(x), F.softmax(t64(x), -1), "fp32")
    y = rng.standard_normal((2, 9001)).astype(np.float32) + 3
    assert_close(ops.layer_norm(y, 9001), F.layer_norm(t64(y), (9001,)), "fp32", scale=10)
    assert_close(ops.rms_norm(y, [9001]), F.rms_norm(t64(y), (9001,), eps=float(np.finfo(np.float32).eps)),
                 "fp32", scale=10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_norm(device, rng, dtype):
    x = rand(rng, (3, 4, 37), dtype)
    w, b = rand(rng, (4, 37), dtype), rand(rng, (4, 37), dtype)
    out = ops.layer_norm(x, (4, 37), w, b, eps=1e-5)
    assert out.dtype == x.dtype
    assert_close(out, F.layer_norm(t64(x), (4, 37), t64(w), t64(b)), dtype, scale=10)
    assert_close(ops.layer_norm(x[:, ::2], 37), F.layer_norm(t64(x[:, ::2]), (37,)), dtype, scale=10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rms_norm(device, rng, dtype):
    x, w = rand(rng, (5, 1, 19), dtype), rand(rng, (19,), dtype)
    eps = float(torch.finfo(getattr(torch, {"fp32": "float32", "fp64": "float64", "fp16": "float16",
                                            "bf16": "bfloat16"}[dtype])).eps)
    assert_close(ops.rms_norm(x, (19,), w), F.rms_norm(t64(x), (19,), t64(w), eps=eps), dtype, scale=10)
    assert_close(ops.rms_norm(x, 19, eps=1e-3), F.rms_norm(t64(x), (19,), eps=1e-3), dtype, scale=10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gelu_silu(device, rng, dtype):
    x = rand(rng, (4, 3, 50), dtype) * 3
    for out, ref in [(ops.gelu(x), F.gelu(t64(x))), (ops.gelu(x, approximate="tanh"), F.gelu(t64(x), approximate="tanh")),
                     (ops.silu(x), F.silu(t64(x))), (ops.silu(x[:, ::2].transpose(2, 0, 1)),
                                                    F.silu(t64(x[:, ::2].transpose(2, 0, 1))))]:
        assert out.dtype == x.dtype
        assert_close(out, ref, dtype, scale=10)
    assert_close(ops.silu(np.float32(2.0)), F.silu(torch.tensor(2.0, dtype=torch.float64)), "fp32", scale=2)


def test_tensors_and_errors(device, rng):
    x = rng.standard_normal((3, 8)).astype(np.float32)
    out = ops.softmax(ky.tensor(x))
    assert isinstance(out, ky.Tensor) and out.device is device
    with pytest.raises(ky.UnsupportedError):
        ops.softmax(x.astype(np.int32))
    with pytest.raises(ky.UnsupportedError):
        ops.gelu(x, approximate="sigmoid")
    with pytest.raises(ky.ArgumentError):
        ops.softmax(x, dim=2)
    with pytest.raises(ky.ArgumentError):
        ops.layer_norm(x, (4,))
    with pytest.raises(ky.ArgumentError):
        ops.layer_norm(x, (8,), weight=np.ones(4, np.float32))


@pytest.mark.parametrize("n", [320, 384, 448, 640, 768])
def test_layer_norm_mid_rows(device, rng, n):
    # rows of these lengths were miscompiled by gcc's unroll-and-jam (see cpu/toolchain.py)
    x = rng.standard_normal((7, n)).astype(np.float32)
    with ky.device(device):
        y = ky.ops.layer_norm(x, (n,), eps=1e-12)
    ref = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-12)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
