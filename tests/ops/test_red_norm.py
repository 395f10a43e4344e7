"""ONNX LayerNormalization, InstanceNormalization, GroupNormalization, BatchNormalization against
onnx's reference evaluator (or numpy in float64 where the reference cannot run the case).

Tolerances (outputs of order 1-3): fp32 1e-4 relative / 1e-5 absolute; fp64 1e-10; fp16 2e-2 /
1e-2 and bf16 6e-2 / 4e-2 (the reference computes in the narrow type, kaiyuan in fp32).
"""

import ml_dtypes
import numpy as np
import pytest

from kaiyuan.runtime.errors import ArgumentError, UnsupportedError

from .onnx_node import check, run_kaiyuan, run_reference

TOL = {np.float32: (1e-4, 1e-5), np.float64: (1e-10, 1e-10), np.float16: (2e-2, 1e-2),
       ml_dtypes.bfloat16: (6e-2, 4e-2)}


def close(got, want, dtype):
    rtol, atol = TOL[dtype]
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64), rtol=rtol, atol=atol)


def rand(rng, shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


# ------------------------------------------------------------------------------ LayerNormalization
def layer_norm(x, w, b=None, axis=-1, eps=1e-5, device="cpu"):
    rtol, atol = TOL.get(x.dtype.type, (0, 0))
    return check("LayerNormalization", [x, w] + ([b] if b is not None else []), {"axis": axis, "epsilon": eps},
                 opset=17, rtol=rtol, atol=atol, device=device)[0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, ml_dtypes.bfloat16])
def test_layer_norm_axes_and_dtypes(dtype, rng):
    x = rand(rng, (3, 4, 37), dtype)
    layer_norm(x, rand(rng, (37,), dtype), rand(rng, (37,), dtype))
    layer_norm(x, rand(rng, (4, 37), dtype), rand(rng, (4, 37), dtype), axis=1, eps=1e-3)
    layer_norm(x, rand(rng, (3, 4, 37), dtype), None, axis=-3)


def test_layer_norm_broadcast_params_strided_long(rng):
    x = rand(rng, (3, 4, 6))
    layer_norm(x, rand(rng, (6,)), rand(rng, (1, 6)), axis=1)          # (D,) scale over (H, D)
    layer_norm(x, rand(rng, (1, 1, 6)), rand(rng, (6,)), axis=-1)      # leading 1s
    base = rand(rng, (6, 5, 8))
    layer_norm(base.transpose(2, 0, 1), rand(rng, (5,)), rand(rng, (5,)))
    layer_norm(base[::2, ::-1], rand(rng, (5, 8)), None, axis=1)
    long = rand(rng, (2, 9000)) * 3 + 1
    layer_norm(long, rand(rng, (9000,)), rand(rng, (9000,)))
    with pytest.raises(UnsupportedError, match="varies over dims"):
        layer_norm(x, rand(rng, (3, 1, 6)), None, axis=-1)
    with pytest.raises(ArgumentError, match="does not broadcast"):
        layer_norm(x, rand(rng, (5,)), None, axis=-1)


@pytest.mark.parametrize("shape,axis", [((3, 4, 37), -1), ((2, 3, 5000), 1), ((5, 6), 0)])
def test_layer_norm_statistics_outputs(shape, axis, rng):
    x = rand(rng, shape) + 2
    w, b = rand(rng, shape[axis:]), rand(rng, shape[axis:])
    attrs = {"axis": axis, "_num_outputs": 3}
    got = run_kaiyuan("LayerNormalization", [x, w, b], attrs, opset=17)
    want = run_reference("LayerNormalization", [x, w, b], {"axis": axis}, opset=17, n_outputs=3)
    assert [g.shape for g in got] == [w.shape for w in want]
    assert got[1].dtype == got[2].dtype == np.float32      # ONNX's U = fp32 (stash_type 1)
    for g, w_ in zip(got, want):
        close(g, w_, np.float32)
    y, mean = run_kaiyuan("LayerNormalization", [x, w, b], {"axis": axis, "_num_outputs": 2}, opset=17)
    close(mean, want[1], np.float32)


def test_layer_norm_errors_and_interp(device, rng):
    x = rand(rng, (3, 5))
    with pytest.raises(UnsupportedError, match="stash_type"):
        run_kaiyuan("LayerNormalization", [x, rand(rng, (5,))], {"stash_type": 0}, opset=17)
    with pytest.raises(ArgumentError, match="out of range"):
        layer_norm(x, rand(rng, (5,)), axis=2)
    with pytest.raises(UnsupportedError, match="int32"):
        layer_norm(x.astype(np.int32), rand(rng, (5,)))
    layer_norm(x, rand(rng, (5,)), rand(rng, (5,)), device=device.name)
    got = run_kaiyuan("LayerNormalization", [x.T, rand(rng, (3,))], {"_num_outputs": 3}, opset=17, device=device.name)
    close(got[1].ravel(), x.T.mean(1), np.float32)


# ------------------------------------------------------------------------ Instance / Group norm
def instance_norm(x, s, b, eps=1e-5, device="cpu"):
    rtol, atol = TOL.get(x.dtype.type, (0, 0))
    return check("InstanceNormalization", [x, s, b], {"epsilon": eps}, opset=13, rtol=rtol, atol=atol,
                 device=device)[0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_instance_norm(dtype, rng):
    for shape in ((2, 3, 7), (2, 3, 4, 5), (1, 2, 3, 2, 4)):
        C = shape[1]
        instance_norm(rand(rng, shape, dtype), rand(rng, (C,), dtype), rand(rng, (C,), dtype))
    base = rand(rng, (5, 4, 6, 3), dtype)
    instance_norm(base.transpose(0, 3, 1, 2), rand(rng, (3,), dtype), rand(rng, (3,), dtype), eps=1e-2)
    instance_norm(base[:, ::2, ::-1], rand(rng, (2,), dtype), rand(rng, (2,), dtype))


def group_norm64(x, s, b, G, eps, per_channel):
    x = x.astype(np.float64)
    N, C = x.shape[:2]
    g = x.reshape(N, G, -1)
    y = ((g - g.mean(2, keepdims=True)) / np.sqrt(g.var(2, keepdims=True) + eps)).reshape(x.shape)
    shape = (1, C) + (1,) * (x.ndim - 2)
    if not per_channel:
        s, b = np.repeat(s, C // G), np.repeat(b, C // G)
    return y * s.astype(np.float64).reshape(shape) + b.astype(np.float64).reshape(shape)


@pytest.mark.parametrize("opset", [18, 21])
def test_group_norm(opset, rng):
    x = rand(rng, (2, 6, 5, 3))
    for G in (1, 2, 3, 6):
        n = 6 if opset == 21 else G
        s, b = rand(rng, (n,)), rand(rng, (n,))
        check("GroupNormalization", [x, s, b], {"num_groups": G, "epsilon": 1e-3}, opset=opset, rtol=1e-4, atol=1e-5)
        got = run_kaiyuan("GroupNormalization", [x.transpose(0, 1, 3, 2), s, b], {"num_groups": G}, opset=opset)[0]
        close(got, group_norm64(x.transpose(0, 1, 3, 2), s, b, G, 1e-5, opset == 21), np.float32)


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16])
def test_group_norm_narrow_floats(dtype, rng):
    x, s, b = rand(rng, (2, 4, 9), dtype), rand(rng, (4,), dtype), rand(rng, (4,), dtype)
    got = run_kaiyuan("GroupNormalization", [x, s, b], {"num_groups": 2}, opset=21)[0]
    assert got.dtype == x.dtype
    close(got, group_norm64(x, s, b, 2, 1e-5, True), dtype)


def test_norm_errors_and_interp(device, rng):
    x = rand(rng, (2, 6, 4))
    with pytest.raises(ArgumentError, match="num_groups=4"):
        run_kaiyuan("GroupNormalization", [x, rand(rng, (6,)), rand(rng, (6,))], {"num_groups": 4}, opset=21)
    with pytest.raises(ArgumentError, match=r"expected \(3,\)"):
        run_kaiyuan("GroupNormalization", [x, rand(rng, (6,)), rand(rng, (6,))], {"num_groups": 3}, opset=18)
    with pytest.raises(ArgumentError, match=r"expected \(6,\)"):
        instance_norm(x, rand(rng, (5,)), rand(rng, (6,)))
    instance_norm(x, rand(rng, (6,)), rand(rng, (6,)), device=device.name)
    check("GroupNormalization", [x, rand(rng, (6,)), rand(rng, (6,))], {"num_groups": 3}, opset=21, rtol=1e-4,
          atol=1e-5, device=device.name)


# ------------------------------------------------------------------------------ BatchNormalization
def bn_inputs(rng, shape, dtype=np.float32, param_dtype=None):
    C, p = shape[1], param_dtype or dtype
    return [rand(rng, shape, dtype), rand(rng, (C,), p), rand(rng, (C,), p), rand(rng, (C,), p),
            (rng.random(C) + 0.5).astype(p)]


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 7), (2, 3, 4, 5), (1, 2, 3, 1, 2)])
def test_batch_norm(shape, rng):
    inputs = bn_inputs(rng, shape)
    check("BatchNormalization", inputs, {"epsilon": 1e-3}, opset=15, rtol=1e-5, atol=1e-5)
    check("BatchNormalization", inputs, {"training_mode": 0}, opset=14, rtol=1e-5, atol=1e-5)
    # opset 9-13 has no training_mode (the reference then updates the running statistics): compare
    # with opset 15's inference result
    got = run_kaiyuan("BatchNormalization", inputs, {}, opset=13)[0]
    close(got, run_reference("BatchNormalization", inputs, {}, opset=15)[0], np.float32)


def test_batch_norm_dtypes_and_strided(rng):
    for dtype in (np.float64, np.float16, ml_dtypes.bfloat16):
        inputs = bn_inputs(rng, (2, 3, 5), dtype)
        rtol, atol = TOL[dtype]
        check("BatchNormalization", inputs, {}, opset=15, rtol=rtol, atol=atol)
    inputs = bn_inputs(rng, (2, 3, 5), np.float16, np.float32)        # opset 15: fp32 statistics, fp16 data
    check("BatchNormalization", inputs, {}, opset=15, rtol=2e-2, atol=1e-2)
    x = rand(rng, (6, 5, 3, 4)).transpose(0, 2, 3, 1)[::2]
    check("BatchNormalization", [x] + bn_inputs(rng, x.shape)[1:], {}, opset=15, rtol=1e-5, atol=1e-5)


def test_batch_norm_errors_and_interp(device, rng):
    inputs = bn_inputs(rng, (2, 3, 4))
    with pytest.raises(UnsupportedError, match="training_mode=1"):
        run_kaiyuan("BatchNormalization", inputs, {"training_mode": 1}, opset=15)
    with pytest.raises(UnsupportedError, match="3 outputs"):
        run_kaiyuan("BatchNormalization", inputs, {"_num_outputs": 3}, opset=15)
    with pytest.raises(ArgumentError, match=r"expected \(3,\)"):
        run_kaiyuan("BatchNormalization", inputs[:4] + [inputs[4][:2]], {}, opset=15)
    check("BatchNormalization", inputs, {}, opset=15, rtol=1e-5, atol=1e-5, device=device.name)
