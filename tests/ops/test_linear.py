"""ky.ops.linear (fused epilogues) and swiglu_linear against torch.nn.functional in float64."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import kaiyuan as ky
from kaiyuan import ops

from .conftest import assert_close, rand

ACTS = {None: lambda t: t, "relu": F.relu, "gelu": F.gelu, "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"),
        "silu": F.silu}


def t64(x):
    return torch.from_numpy(np.asarray(x, dtype=np.float64))


@pytest.mark.parametrize("activation", list(ACTS))
def test_epilogues(device, rng, activation):
    x = rng.standard_normal((2, 5, 13)).astype(np.float32)
    w = rng.standard_normal((7, 13)).astype(np.float32)
    b = rng.standard_normal(7).astype(np.float32)
    r = rng.standard_normal((5, 7)).astype(np.float32)  # broadcast over the leading dim
    ref = ACTS[activation](F.linear(t64(x), t64(w), t64(b)))
    assert_close(ops.linear(x, w, b, activation=activation), ref, "fp32", scale=4)
    assert_close(ops.linear(x, w, b, activation=activation, residual=r), ref + t64(r), "fp32", scale=4)


@pytest.mark.parametrize("dtype", ["fp32", "fp64", "fp16", "bf16"])
def test_dtypes_and_layouts(device, rng, dtype):
    M, N, K = (3, 5, 9) if device.name == "interp" else (33, 70, 45)
    x = rand(rng, (K, M), dtype).T  # transposed input
    w = rand(rng, (N, K), dtype)
    b = rand(rng, (N,), dtype)
    out = ops.linear(x, w, b, activation="relu")
    assert out.dtype == x.dtype and out.shape == (M, N)
    assert_close(out, F.relu(F.linear(t64(x.astype(np.float64)), t64(w.astype(np.float64)),
                                      t64(b.astype(np.float64)))), dtype, scale=np.sqrt(K))


def test_one_dimensional_input_and_tensors(device, rng):
    x = rng.standard_normal(6).astype(np.float32)
    w = rng.standard_normal((4, 6)).astype(np.float32)
    out = ops.linear(ky.tensor(x), ky.tensor(w))
    assert isinstance(out, ky.Tensor) and out.shape == (4,)
    assert_close(out, F.linear(t64(x), t64(w)), "fp32")


def test_swiglu(device, rng):
    x = rng.standard_normal((3, 4, 10)).astype(np.float32)
    wg, wu = rng.standard_normal((6, 10)).astype(np.float32), rng.standard_normal((6, 10)).astype(np.float32)
    ref = F.silu(F.linear(t64(x), t64(wg))) * F.linear(t64(x), t64(wu))
    assert_close(ops.swiglu_linear(x, wg, wu), ref, "fp32", scale=10)
    r = rng.standard_normal((3, 4, 6)).astype(np.float32)
    assert_close(ops.swiglu_linear(x.transpose(1, 0, 2), wg, wu, residual=r.transpose(1, 0, 2)),
                 (ref + t64(r)).permute(1, 0, 2), "fp32", scale=10)


def test_errors(device):
    x, w = np.ones((2, 3), np.float32), np.ones((4, 3), np.float32)
    with pytest.raises(ky.UnsupportedError, match="activation"):
        ops.linear(x, w, activation="tanh")
    with pytest.raises(ky.UnsupportedError):
        ops.linear(x.astype(np.int8), w.astype(np.int8))
    with pytest.raises(ky.ArgumentError):
        ops.linear(x, w.T)
    with pytest.raises(ky.ArgumentError):
        ops.linear(x, w, bias=np.ones(3, np.float32))
    with pytest.raises(ky.ArgumentError):
        ops.linear(x, w, residual=np.ones((3, 4), np.float32))


def test_swiglu_every_cpu_config_and_ragged_sizes(device, rng, monkeypatch):
    """Each cpu config of swiglu_kernel on M, N past the tiles (masked rows/columns) with K both a
    multiple of BLOCK_K (EVEN_K: no K mask) and not; fp32 against torch in float64, tolerance
    TOL["fp32"] * sqrt(K) * |ref| scale (fp32 accumulation over K)."""
    from kaiyuan.ops import dense

    if device.name == "interp":
        pytest.skip("cpu tiles; interp runs one fixed small config (test_swiglu)")
    for cfg in dense.SWIGLU_CPU_CONFIGS:
        monkeypatch.setattr(dense, "SWIGLU_CPU_CONFIGS", [cfg])
        for M, K, N in ((70, 256, 150), (300, 100, 130)):
            x = rng.standard_normal((M, K)).astype(np.float32)
            wg, wu = (rng.standard_normal((N, K)).astype(np.float32) / 8 for _ in range(2))
            r = rng.standard_normal((M, N)).astype(np.float32)
            ref = F.silu(F.linear(t64(x), t64(wg))) * F.linear(t64(x), t64(wu)) + t64(r)
            assert_close(ops.swiglu_linear(x, wg, wu, residual=r), ref, "fp32",
                         scale=np.sqrt(K) * max(1.0, float(ref.abs().max())))


@pytest.mark.parametrize("dtype", ["fp32", "fp16", "bf16", "fp64"])
def test_packed_weight_gives_the_unpacked_result(device, rng, dtype):
    """dense.linear_packed with gemm.pack_b(W) computes what linear(x, W.T) does, bit for bit (the
    same tiles, the same K order), for N not a multiple of the panel, batch dims, and every epilogue."""
    from kaiyuan.ops import dense, gemm

    shapes = (((3, 5), 33, 70), ((7,), 64, 128), ((1,), 5, 64))
    for lead, K, N in shapes if dtype == "fp32" else shapes[:1]:   # (each shape compiles its kernels)
        x, w = rand(rng, lead + (K,), dtype), rand(rng, (K, N), dtype)
        b, r = rand(rng, (N,), dtype), rand(rng, lead + (N,), dtype)
        packed = gemm.pack_b(w)
        assert packed.shape == (-(-N // 64), K, 64)
        for kw in ({}, {"bias": b, "activation": "gelu", "residual": r}):
            got = dense.linear_packed(x, packed, N, **kw)
            np.testing.assert_array_equal(got, ops.linear(x, w.T, **kw))


def test_malformed_packed_weights_are_refused(device, rng):
    from kaiyuan import ArgumentError
    from kaiyuan.ops import dense, gemm

    x, w = rand(rng, (4, 8), "fp32"), rand(rng, (8, 70), "fp32")
    with pytest.raises(ArgumentError, match="does not hold a"):
        dense.linear_packed(x, gemm.pack_b(w), 200)          # more outputs than the panels hold
    with pytest.raises(ArgumentError, match="does not hold a"):
        dense.linear_packed(x, w, 70)                        # not packed at all
