"""kaiyuan.Reduce (ops.fused_reduce): a reduction of an element-wise expression in one generated
kernel, against numpy in float64 (tolerances: tests/ops/conftest.py TOL, relative to the
reference's scale; the kernel accumulates in fp32, fp64 for fp64)."""

import numpy as np
import pytest

import kaiyuan as ky
from kaiyuan.ops.fused import parse_expr
from kaiyuan.ops.fused_reduce import run_reduce_expr

from .conftest import assert_close, rand

REFS = {
    "ReduceSum": lambda v, a: v.sum(a), "ReduceMean": lambda v, a: v.mean(a), "ReduceMax": lambda v, a: v.max(a),
    "ReduceMin": lambda v, a: v.min(a), "ReduceProd": lambda v, a: v.prod(a),
    "ReduceSumSquare": lambda v, a: (v * v).sum(a), "ReduceL1": lambda v, a: np.abs(v).sum(a),
    "ReduceL2": lambda v, a: np.sqrt((v * v).sum(a)),
}


def _run(expr_text, inputs, reduction, axes, keepdims=False):
    ref = REFS[reduction]
    v = _eval(expr_text, [np.asarray(x, np.float64) for x in inputs])
    want = ref(v, tuple(axes))
    if keepdims:
        want = np.expand_dims(want, tuple(axes))
    out = np.empty(want.shape, inputs[0].dtype)
    run_reduce_expr(parse_expr(expr_text), inputs, reduction, axes, out)
    return out, want


def _eval(text, xs):
    # the expressions these tests use, in numpy
    return {"mul(add($0,$1),float32(0.5))": lambda: (xs[0] + xs[1]) * 0.5,
            "mul($0,$1)": lambda: xs[0] * xs[1],
            "pow($0,float32(2.0))": lambda: xs[0] ** 2,
            "sub($0,$1)": lambda: xs[0] - xs[1]}[text]()


@pytest.mark.parametrize("reduction", list(REFS))
@pytest.mark.parametrize("axes", [(2,), (1,), (0, 2), (0, 1, 2)])
def test_reductions_over_axes_with_broadcast_inputs(device, rng, reduction, axes):
    x = rng.standard_normal((3, 5, 37)).astype(np.float32)   # 37: not a multiple of the tile
    y = rng.uniform(0.5, 1.5, (5, 1)).astype(np.float32)      # broadcasts over dims 0 and 2
    out, want = _run("mul(add($0,$1),float32(0.5))", [x, y], reduction, list(axes))
    assert_close(out, want, "fp32")


@pytest.mark.parametrize("dtype", ["fp32", "fp64", "fp16", "bf16"])
def test_dtypes_keepdims_and_strided_inputs(device, rng, dtype):
    big = rand(rng, (4, 6, 18), dtype)
    x = big[:, ::2, ::2]                                      # non-contiguous view, read in place
    m = (rng.random((4, 3, 1)) < 0.7).astype(big.dtype)
    out, want = _run("mul($0,$1)", [x, m], "ReduceSum", [1], keepdims=True)
    assert out.shape == (4, 1, 9)
    assert_close(out, want, dtype, scale=max(1.0, float(np.abs(want).max())) * 3)


def test_large_reduction_and_one_output(device, rng):
    n = 300 if device.name == "interp" else 5000
    x = rng.standard_normal((n,)).astype(np.float32)
    out, want = _run("pow($0,float32(2.0))", [x], "ReduceMean", [0])
    assert out.shape == () and abs(float(out) - want) <= 2e-5 * max(1.0, abs(want))


def test_errors(device):
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ky.UnsupportedError, match="reduction 'ReduceLogSum'"):
        run_reduce_expr(parse_expr("mul($0,$1)"), [x, x], "ReduceLogSum", [1], np.empty(2, np.float32))
    with pytest.raises(ky.ArgumentError, match="out has 3 elements"):
        run_reduce_expr(parse_expr("mul($0,$1)"), [x, x], "ReduceSum", [1], np.empty(3, np.float32))
    with pytest.raises(ky.ArgumentError, match="do not broadcast"):
        run_reduce_expr(parse_expr("mul($0,$1)"), [x, np.ones((4,), np.float32)], "ReduceSum", [1],
                        np.empty(2, np.float32))
