"""ky.ops.scaled_dot_product_attention against torch's (float64 reference)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import kaiyuan as ky
from kaiyuan import ops

from .conftest import assert_close, rand


def t64(x):
    return None if x is None else torch.from_numpy(np.asarray(x).astype(np.float64) if np.asarray(x).dtype != bool
                                                   else np.asarray(x))


def ref(q, k, v, **kw):
    return F.scaled_dot_product_attention(t64(q), t64(k), t64(v), **{n: t64(a) if n == "attn_mask" else a
                                                                     for n, a in kw.items()})


def sizes(device):
    # (B, H, Lq, Lk, E, Ev): Lq != Lk, sizes past one key block on cpu
    return [(1, 2, 5, 7, 4, 6)] if device.name == "interp" else [(2, 3, 5, 7, 4, 6), (1, 2, 70, 150, 16, 8)]


@pytest.mark.parametrize("causal", [False, True])
def test_causal_and_not(device, rng, causal):
    for B, H, Lq, Lk, E, EV in sizes(device):
        q, k, v = (rng.standard_normal(s).astype(np.float32) for s in ((B, H, Lq, E), (B, H, Lk, E), (B, H, Lk, EV)))
        assert_close(ops.scaled_dot_product_attention(q, k, v, is_causal=causal), ref(q, k, v, is_causal=causal),
                     "fp32")
        # Lq > Lk too
        assert_close(ops.scaled_dot_product_attention(k, q, q[..., :1].repeat(EV, -1), is_causal=causal),
                     ref(k, q, q[..., :1].repeat(EV, -1), is_causal=causal), "fp32")


def test_bool_and_float_masks(device, rng):
    for B, H, Lq, Lk, E, EV in sizes(device)[-1:]:
        q, k, v = (rng.standard_normal(s).astype(np.float32) for s in ((B, H, Lq, E), (B, H, Lk, E), (B, H, Lk, EV)))
        bm = rng.random((Lq, Lk)) > 0.4
        bm[0] = False                                   # a row that sees no key: zeros, as torch
        fm = rng.standard_normal((H, 1, Lk)).astype(np.float32)   # the same for every query: a key mask
        kb = rng.random((B, 1, 1, Lk)) > 0.3                     # a key-padding mask (read as a vector)
        kb[0] = False                                           # batch 0 sees no key at all: zeros
        for mask in (bm, fm, bm[None, None], kb):
            assert_close(ops.scaled_dot_product_attention(q, k, v, attn_mask=mask), ref(q, k, v, attn_mask=mask),
                         "fp32")
        assert_close(ops.scaled_dot_product_attention(q, k, v, attn_mask=bm, is_causal=True, scale=0.3),
                     ref(q, k, v, attn_mask=bm & np.tril(np.ones((Lq, Lk), bool)), scale=0.3), "fp32")


@pytest.mark.parametrize("dtype", ["fp32", "fp64", "fp16", "bf16"])
def test_dtypes(device, rng, dtype):
    q, k, v = rand(rng, (1, 2, 6, 8), dtype), rand(rng, (1, 2, 9, 8), dtype), rand(rng, (1, 2, 9, 8), dtype)
    out = ops.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert out.dtype == q.dtype
    assert_close(out, ref(q, k, v, is_causal=True), dtype, scale=2)


def test_layouts_gqa_three_d_and_tensors(device, rng):
    q = rng.standard_normal((1, 5, 4, 8)).astype(np.float32).transpose(0, 2, 1, 3)   # (B, H, L, E) from BLHE
    k = rng.standard_normal((1, 2, 6, 8)).astype(np.float32)
    v = rng.standard_normal((1, 2, 6, 3)).astype(np.float32)
    out = ops.scaled_dot_product_attention(ky.tensor(np.ascontiguousarray(q)), ky.tensor(k), ky.tensor(v),
                                           enable_gqa=True)
    assert isinstance(out, ky.Tensor) and out.shape == (1, 4, 5, 3)
    assert_close(out, ref(q, k.repeat(2, 1), v.repeat(2, 1)), "fp32")
    assert_close(ops.scaled_dot_product_attention(q, k[:, :1].repeat(4, 1), v[:, :1].repeat(4, 1)),
                 ref(q, k[:, :1].repeat(4, 1), v[:, :1].repeat(4, 1)), "fp32")
    q3, k3 = rng.standard_normal((2, 3, 4)).astype(np.float32), rng.standard_normal((2, 5, 4)).astype(np.float32)
    assert_close(ops.scaled_dot_product_attention(q3, k3, k3), ref(q3, k3, k3), "fp32")


def test_errors(device):
    q = np.ones((1, 1, 2, 4), np.float32)
    with pytest.raises(ky.UnsupportedError):
        ops.scaled_dot_product_attention(q, q, q, dropout_p=0.1)
    with pytest.raises(ky.UnsupportedError):
        ops.scaled_dot_product_attention(q.astype(np.int8), q.astype(np.int8), q.astype(np.int8))
    with pytest.raises(ky.UnsupportedError):
        ops.scaled_dot_product_attention(q, q, q, attn_mask=np.ones((2, 2), np.int32))
    with pytest.raises(ky.ArgumentError):
        ops.scaled_dot_product_attention(q, np.ones((1, 1, 2, 3), np.float32), q)
    with pytest.raises(ky.ArgumentError):
        ops.scaled_dot_product_attention(q, q, q, attn_mask=np.ones((3, 2), bool))


@pytest.mark.parametrize("causal", [False, True])
def test_every_cpu_config_unmasked_and_masked_blocks(device, rng, monkeypatch, causal):
    """Each cpu (BLOCK_M, BLOCK_N) on sizes with whole key blocks (the unmasked loop), a ragged
    tail past Lk and, causal, diagonal blocks (the masked loop); Lq != Lk both ways. fp32 against
    torch in float64, tolerance TOL["fp32"] relative to the output's scale (conftest)."""
    from kaiyuan.ops import attention

    if device.name == "interp":
        pytest.skip("cpu tiles; interp runs one fixed small config (test_causal_and_not)")
    for cfg in attention.CPU_CONFIGS:
        monkeypatch.setattr(attention, "CPU_CONFIGS", [cfg])
        for Lq, Lk in ((256, 256), (300, 200), (130, 390)):
            q, k, v = (rng.standard_normal(s).astype(np.float32) for s in ((1, 2, Lq, 64), (1, 2, Lk, 64), (1, 2, Lk, 32)))
            assert_close(ops.scaled_dot_product_attention(q, k, v, is_causal=causal),
                         ref(q, k, v, is_causal=causal), "fp32")


def test_negative_and_large_scale(device, rng):
    """scale < 0 takes the unmasked loop's min-based running maximum; a large scale makes the
    softmax nearly one-hot (exp2 of large negative arguments underflows to 0 cleanly). (torch's
    float64 reference gives NaN for is_causal with a negative scale, so that pair is not compared.)"""
    Lq, Lk = (6, 9) if device.name == "interp" else (70, 256)
    q, k, v = (rng.standard_normal(s).astype(np.float32) for s in ((1, 2, Lq, 16), (1, 2, Lk, 16), (1, 2, Lk, 16)))
    for scale, causals in ((-0.4, (False,)), (3.0, (False, True))):
        for causal in causals:
            assert_close(ops.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale),
                         ref(q, k, v, is_causal=causal, scale=scale), "fp32")


def test_short_sequences_take_small_blocks():
    """Blocks larger than the sequences (rounded up to a power of two, at least 16) are pruned:
    11 tokens take the 16 x 16 blocks, 40 queries over 300 keys at most 64 x 128; 16 x 16 blocks
    only serve sequences shorter than 64."""
    from kaiyuan.ops import attention

    def kept(Lq, Lk):
        return sorted((c.kwargs["BLOCK_M"], c.kwargs["BLOCK_N"])
                      for c in attention.fitting_blocks(attention.CPU_CONFIGS, {"Lq": Lq, "Lk": Lk}))

    assert kept(11, 11) == [(16, 16)]
    assert kept(40, 300) == [(16, 16), (32, 32), (64, 64), (64, 128)]
    assert kept(512, 512) == sorted((c.kwargs["BLOCK_M"], c.kwargs["BLOCK_N"]) for c in attention.CPU_CONFIGS
                                    if c.kwargs["BLOCK_M"] > 16)
    assert (16, 16) not in kept(64, 128)
    assert kept(1, 1) == [(16, 16)]
