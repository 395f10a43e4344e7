"""ONNX Softmax, LogSoftmax, Hardmax, LpNormalization, MeanVarianceNormalization against onnx's
reference evaluator.

Tolerances (relative/absolute, outputs of order 1): fp32 1e-5/1e-6 (1e-4/1e-5 for MVN, whose
E[x^2] - E[x]^2 cancels); fp64 1e-12; fp16 1e-2/2e-3 and bf16 4e-2/1e-2 (the reference computes
in the narrow type, kaiyuan in fp32 with one rounding). LpNormalization with p=1 is checked
against numpy on signed inputs, because the reference sums x rather than |x|.
"""

import ml_dtypes
import numpy as np
import pytest

from kaiyuan.runtime.errors import ArgumentError, UnsupportedError

from .onnx_node import check, run_kaiyuan

TOL = {np.float32: (1e-5, 1e-6), np.float64: (1e-12, 1e-12), np.float16: (1e-2, 2e-3),
       ml_dtypes.bfloat16: (4e-2, 1e-2)}
SOFTMAXES = ["Softmax", "LogSoftmax", "Hardmax"]


def run(op, x, attrs=None, device="cpu", tol=None):
    rtol, atol = tol or TOL.get(x.dtype.type, (0, 0))
    opset = 17 if op == "LpNormalization" else 13
    return check(op, [x], attrs or {}, opset=opset, rtol=rtol, atol=atol, device=device)[0]


@pytest.mark.parametrize("op", SOFTMAXES)
def test_each_axis(op, rng):
    x = rng.standard_normal((3, 5, 7)).astype(np.float32)
    for axis in (-1, 2, 1, 0, -3):
        out = run(op, x, {"axis": axis})
        assert out.shape == x.shape and out.dtype == x.dtype
    run(op, x)                                      # default axis -1


@pytest.mark.parametrize("op", SOFTMAXES)
@pytest.mark.parametrize("dtype", [np.float64, np.float16, ml_dtypes.bfloat16])
def test_dtypes(op, dtype, rng):
    x = rng.standard_normal((4, 9)).astype(dtype)
    run(op, x, {"axis": -1})
    run(op, x, {"axis": 0})


@pytest.mark.parametrize("op", SOFTMAXES)
def test_non_contiguous_and_long(op, rng):
    base = rng.standard_normal((6, 10, 8)).astype(np.float32)
    for x in (base.transpose(2, 0, 1), base[::2, ::-3], base[:, 4]):
        run(op, x, {"axis": -1})
        run(op, x, {"axis": 1})
    long = rng.standard_normal((2, 3000)).astype(np.float32) * 4
    long[1, :1500] = -np.inf            # whole chunks of -inf
    run(op, long, {"axis": -1}, tol=(1e-5, 1e-5))
    run(op, long.T.copy()[:, :1], {"axis": 0}, tol=(1e-5, 1e-5))   # a long leading axis
    run(op, rng.standard_normal((40, 130)).astype(np.float32), {"axis": 0})


def test_hardmax_ties_and_nan(rng):
    x = rng.integers(0, 3, (5, 6)).astype(np.float32)       # ties: the first max gets the 1
    run("Hardmax", x, {"axis": 1})
    run("Hardmax", x, {"axis": 0})
    x[2, 3] = np.nan
    out = run("Hardmax", x, {"axis": 1})
    assert out[2].tolist() == [0, 0, 0, 1, 0, 0]


def test_empty_and_errors(rng):
    for op in SOFTMAXES:
        assert run(op, np.zeros((3, 0), np.float32), {"axis": 1}).shape == (3, 0)
        assert run(op, np.zeros((0, 4), np.float32), {"axis": 1}).shape == (0, 4)
    with pytest.raises(ArgumentError, match="out of range"):
        run("Softmax", np.zeros((2, 3), np.float32), {"axis": 2})
    with pytest.raises(UnsupportedError, match="int32"):
        run("LogSoftmax", np.zeros((2, 3), np.int32), {"axis": 1})


def test_interp(device, rng):
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    for op in SOFTMAXES:
        run(op, x, {"axis": -1}, device=device.name)
        run(op, x.transpose(1, 2, 0), {"axis": 1}, device=device.name)
    run("LpNormalization", np.abs(x), {"axis": 0, "p": 1}, device=device.name)
    run("MeanVarianceNormalization", x[None], {"axes": [1, 3]}, device=device.name, tol=(1e-4, 1e-5))


# ------------------------------------------------------------------------------- LpNormalization
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_lp_normalization(dtype, rng):
    x = rng.standard_normal((3, 4, 5)).astype(dtype)
    for axis in (-1, 0, 1):
        run("LpNormalization", x, {"axis": axis, "p": 2})
        run("LpNormalization", np.abs(x), {"axis": axis, "p": 1})
    signed = run_kaiyuan("LpNormalization", [x], {"axis": 1, "p": 1}, opset=17)[0].astype(np.float64)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(signed, x64 / np.abs(x64).sum(1, keepdims=True), rtol=TOL[dtype][0], atol=TOL[dtype][1])


def test_lp_zero_norm_and_errors(rng):
    x = rng.standard_normal((3, 5)).astype(np.float32)
    x[1] = 0
    assert run("LpNormalization", x, {"axis": 1}).tolist()[1] == [0.0] * 5
    with pytest.raises(UnsupportedError, match="p=3"):
        run("LpNormalization", x, {"axis": 1, "p": 3})
    with pytest.raises(UnsupportedError, match="bfloat16"):
        run("LpNormalization", x.astype(ml_dtypes.bfloat16), {"axis": 1})


# ---------------------------------------------------------------------- MeanVarianceNormalization
def mvn64(x, axes):
    x = x.astype(np.float64)
    mean = x.mean(tuple(axes), keepdims=True)
    return (x - mean) / (np.sqrt((x * x).mean(tuple(axes), keepdims=True) - mean**2) + 1e-9)


def test_mean_variance_normalization(rng):
    x = (rng.standard_normal((2, 3, 4, 5)) + 1).astype(np.float32)
    tol = (1e-4, 1e-5)
    run("MeanVarianceNormalization", x, {}, tol=tol)                       # axes [0, 2, 3]
    run("MeanVarianceNormalization", x, {"axes": [1]}, tol=tol)
    run("MeanVarianceNormalization", x, {"axes": [-1, 1]}, tol=tol)
    run("MeanVarianceNormalization", x.transpose(3, 1, 2, 0), {"axes": [0, 2]}, tol=tol)
    with pytest.raises(ArgumentError, match="out of range"):
        run("MeanVarianceNormalization", x[0], {}, tol=tol)               # rank 3: axis 3 is out of range


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16, np.float64])
def test_mean_variance_normalization_dtypes(dtype, rng):
    """Against numpy: the reference's function body adds an fp32 epsilon, so it rejects fp16."""
    x = (rng.standard_normal((2, 3, 4, 5)) + 1).astype(dtype)
    got = run_kaiyuan("MeanVarianceNormalization", [x], {"axes": [0, 2, 3]}, opset=13)[0]
    assert got.dtype == x.dtype
    rtol, atol = TOL[dtype]
    np.testing.assert_allclose(got.astype(np.float64), mvn64(x, [0, 2, 3]), rtol=rtol, atol=atol * 5)
