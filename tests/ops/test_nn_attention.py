"""kaiyuan.Attention (domain "kaiyuan") against a numpy float64 reference written here.

Tolerances: fp32 rtol 1e-4 / atol 1e-5, fp16 2e-2, fp64 1e-10. Masks never hide every key of a
row (that case is zeros in kaiyuan, as torch, and undefined in a softmax written in numpy).
"""

import math

import numpy as np
import pytest

from kaiyuan.runtime.errors import ArgumentError, UnsupportedError

from .conftest import rand
from .onnx_node import run_kaiyuan


def ref_attention(q, k, v, mask=None, scale=0.0, causal=0):
    q, k, v = (a.astype(np.float64) for a in (q, k, v))
    s = q @ k.swapaxes(-1, -2) * (scale or 1 / math.sqrt(q.shape[-1]))
    if mask is not None:
        s = np.where(mask, s, -np.inf) if mask.dtype == np.bool_ else s + mask
    if causal:
        s = np.where(np.tril(np.ones(s.shape[-2:], bool)), s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True)) @ v


def attention(inputs, device="cpu", **attrs):
    return run_kaiyuan("Attention", inputs, attrs, opset=1, domain="kaiyuan", device=device)[0]


def _mask(rng, shape):
    """An additive mask with -1e4 on random keys, never on key 0."""
    m = np.where(rng.random(shape) < 0.3, -1e4, 0.0).astype(np.float32)
    m[..., 0] = 0.0
    return m


@pytest.mark.parametrize("causal", [0, 1])
@pytest.mark.parametrize("scale", [0.0, 0.3])
def test_attention_scale_causal_mask(device, rng, causal, scale):
    B, H, Lq, Lk, D, Dv = (1, 2, 5, 6, 4, 3) if device.name == "interp" else (2, 3, 19, 23, 16, 8)
    q, k, v = (rng.standard_normal(s).astype(np.float32) for s in ((B, H, Lq, D), (B, H, Lk, D), (B, H, Lk, Dv)))
    for mask in (None, _mask(rng, (B, 1, Lq, Lk)), _mask(rng, (Lk,))):
        inputs = [q, k, v] + ([] if mask is None else [mask])
        y = attention(inputs, device.name, scale=scale, causal=causal)
        assert y.shape == (B, H, Lq, Dv) and y.dtype == np.float32
        np.testing.assert_allclose(y, ref_attention(q, k, v, mask, scale, causal), rtol=1e-4, atol=1e-5)


def test_attention_bool_mask_and_broadcast_heads(device, rng):
    q = rng.standard_normal((2, 3, 4, 8)).astype(np.float32)
    k, v = (rng.standard_normal((2, 1, 5, 8)).astype(np.float32) for _ in range(2))  # one K/V head for all
    mask = rng.random((2, 3, 4, 5)) < 0.7
    mask[..., 0] = True
    np.testing.assert_allclose(attention([q, k, v, mask], device.name), ref_attention(q, k, v, mask),
                               rtol=1e-4, atol=1e-5)


def test_attention_strided_inputs(rng):
    qkv = rng.standard_normal((2, 7, 3, 2, 8)).astype(np.float32)   # (B, L, 3, H, D): a fused QKV projection
    q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))  # (B, H, L, D) views
    np.testing.assert_allclose(attention([q, k, v], causal=1), ref_attention(q, k, v, causal=1), rtol=1e-4,
                               atol=1e-5)


@pytest.mark.parametrize("dtype", ["fp16", "fp64"])
def test_attention_dtypes(rng, dtype):
    q, k, v = (rand(rng, (1, 2, 6, 8), dtype) for _ in range(3))
    y = attention([q, k, v], causal=1)
    assert y.dtype == q.dtype
    tol = 2e-2 if dtype == "fp16" else 1e-10
    np.testing.assert_allclose(y.astype(np.float64), ref_attention(q, k, v, causal=1), rtol=tol, atol=tol)


def test_attention_errors(rng):
    q = rng.standard_normal((1, 2, 4, 8)).astype(np.float32)
    with pytest.raises(ArgumentError, match="4-D"):
        attention([q[0], q[0], q[0]])
    with pytest.raises(ArgumentError, match="do not fit"):
        attention([q, q[..., :4], q])
    with pytest.raises(ArgumentError, match="mask"):
        attention([q, q, q, np.zeros((3, 4), np.float32)])
    with pytest.raises(UnsupportedError, match="int32"):
        attention([q, q, q, np.zeros((4, 4), np.int32)])
    with pytest.raises(UnsupportedError, match="float16"):
        attention([q, q.astype(np.float16), q])
