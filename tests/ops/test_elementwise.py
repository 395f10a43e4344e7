"""The element-wise engine (`kaiyuan.ops.elementwise.run_expr`): fused expressions against numpy,
every operand layout (contiguous, scalar, broadcast, strided, strided output), kernel reuse
across shapes, and errors.

Tolerances: fp32 results rtol 1e-6 (one rounding of an fp32 computation, a few ulps for
sigmoid's exp); fp64 1e-14; fp16 results are compared after rounding the fp32 reference once.
"""

import ml_dtypes
import numpy as np
import pytest

import kaiyuan as ky
from kaiyuan.ops import elementwise, ew_kernel
from kaiyuan.ops.elementwise import result_dtype, run_expr
from kaiyuan.ops.schema import lookup
from kaiyuan.runtime.errors import ArgumentError, UnsupportedError

X, Y, Z = ("in", 0), ("in", 1), ("in", 2)
SILU_PLUS = ("add", ("mul", X, ("sigmoid", X)), Y)


def silu_plus(x, y):
    return x / (1 + np.exp(-x.astype(np.float64))) + y


def run(expr, inputs, shape=None, dtype=None):
    shape = np.broadcast_shapes(*[np.shape(i) for i in inputs]) if shape is None else shape
    out = np.empty(shape, dtype or result_dtype(expr, [i.dtype for i in inputs]))
    run_expr(expr, inputs, out)
    return out


def test_fused_expression_with_broadcasting(device, rng):
    x = rng.standard_normal((5, 1, 7)).astype(np.float32)
    y = rng.standard_normal((3, 1)).astype(np.float32)
    np.testing.assert_allclose(run(SILU_PLUS, [x, y]), silu_plus(x, y), rtol=1e-6, atol=1e-6)


def test_shared_subexpressions_and_constants(rng):
    x, y = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    twice = ("mul", X, ("const", 2.0, "float64"))
    expr = ("where", ("gt", twice, ("const", 0.5, "float64")), ("add", twice, twice), Y)
    want = np.where(2 * x > 0.5, 4 * x, y)
    np.testing.assert_allclose(run(expr, [x, y]), want, rtol=1e-14)


def test_half_precision_is_held_in_fp32_and_an_explicit_cast_rounds():
    x = np.array([300.0, -2.0, 0.5], np.float16)
    square_then_divide = ("div", ("mul", X, X), X)  # 300 * 300 overflows fp16 but not fp32
    np.testing.assert_array_equal(run(square_then_divide, [x]), x)
    rounded = ("div", ("cast:float16", ("mul", X, X)), X)
    assert np.isinf(run(rounded, [x])[0])


def test_bf16_inputs_and_mixed_dtypes_through_casts(rng):
    a = rng.standard_normal(50).astype(ml_dtypes.bfloat16)
    b = rng.integers(-5, 5, 50).astype(np.int32)
    expr = ("mul", ("cast:float32", X), ("cast:float32", Y))
    np.testing.assert_allclose(run(expr, [a, b]), a.astype(np.float32) * b, rtol=1e-6)


LAYOUTS = {
    "scalar": ((4, 5), ()),
    "row": ((4, 5), (1, 5)),
    "column": ((4, 5), (4, 1)),
    "middle": ((3, 4, 5), (3, 1, 5)),
    "rank": ((2, 3, 5), (5,)),
    "outer": ((6, 1), (1, 7)),
    "both_0d": ((), ()),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_broadcast_layouts(layout, rng):
    xs, ys = LAYOUTS[layout]
    x, y = rng.standard_normal(xs).astype(np.float32), rng.standard_normal(ys).astype(np.float32)
    np.testing.assert_array_equal(run(("sub", X, Y), [x, y]), x - y)
    np.testing.assert_array_equal(run(("sub", X, Y), [y, x]), y - x)


@pytest.mark.parametrize("view", ["transposed", "stepped", "reversed", "broadcast_to"])
def test_non_contiguous_inputs(view, rng):
    base = rng.standard_normal((6, 8)).astype(np.float32)
    x = {"transposed": base.T[:, :6], "stepped": base[::2, 1::3], "reversed": base[::-1, ::-2],
         "broadcast_to": np.broadcast_to(base[0], (5, 8))}[view]
    y = rng.standard_normal(x.shape[-1:]).astype(np.float32)
    np.testing.assert_allclose(run(SILU_PLUS, [x, y]), silu_plus(x, y), rtol=1e-6, atol=1e-6)


def test_strided_output(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    big = np.zeros((4, 6), np.float32)
    out = big.T[::2]  # (3, 4) view with strides (2*4, 6*4) bytes
    run_expr(("neg", X), [x], out)
    np.testing.assert_array_equal(out, -x)
    assert np.count_nonzero(big) == x.size  # nothing written outside the view


def test_zero_size():
    out = np.empty((0, 5), np.float32)
    run_expr(("add", X, Y), [np.ones((0, 5), np.float32), np.ones(5, np.float32)], out)
    assert out.shape == (0, 5)


def test_one_kernel_serves_many_shapes(rng):
    expr = ("mul", X, Y)
    run(expr, [rng.standard_normal((3, 5)), rng.standard_normal(5)])
    # other tests in the same process may have made kernels of this expression for other
    # dtypes and layouts: compare before/after, not absolute counts
    sizes = {key: len(k.cache) for key, k in ew_kernel._KERNELS.items()}
    for shape in [(7, 11), (2, 130), (1000, 3)]:
        x, y = rng.standard_normal(shape), rng.standard_normal(shape[-1])
        np.testing.assert_array_equal(run(expr, [x, y]), x * y)
    assert {key: len(k.cache) for key, k in ew_kernel._KERNELS.items()} == sizes  # shapes are run-time arguments
    assert any(key[0] == repr(expr) for key in sizes)


def test_generated_source_lives_in_the_cache_dir():
    from kaiyuan.compiler.cache import cache_dir

    run(("abs", X), [np.array([-1.5, 2.0])])
    sources = list((cache_dir() / "elementwise").glob("ew_*.py"))
    assert any("('abs', ('in', 0))" in p.read_text() for p in sources)


def test_64_bit_indexing_path(monkeypatch, rng):
    """Outputs of 2**31 elements or more index with int64: forced here on small arrays."""
    monkeypatch.setattr(ew_kernel, "I32_MAX", 10)
    x, y = rng.standard_normal((5, 7)).astype(np.float32), rng.standard_normal((5, 1)).astype(np.float32)
    np.testing.assert_array_equal(run(("add", X, Y), [x.T.copy().T, y]), x + y)


def test_ky_tensors_on_interp(rng):
    x = rng.standard_normal((2, 3)).astype(np.float32)
    with ky.device("interp"):
        tx = ky.tensor(x, device="interp")
        out = ky.empty((2, 3), "fp32", device="interp")
        run_expr(("relu", X), [tx], out)
    np.testing.assert_array_equal(out.numpy(), np.maximum(x, 0))


def test_expression_of_an_onnx_node_runs_like_the_node(rng):
    x = rng.standard_normal((4, 4)).astype(np.float32)
    op = lookup("LeakyRelu", 18)
    attrs = op.resolve_attrs({"alpha": 0.2}, "test")
    expr = elementwise.expression("LeakyRelu", 18, ["float32"], attrs)
    want = np.empty_like(x)
    op.run([x], attrs, [None], [want])
    np.testing.assert_array_equal(run(expr, [x]), want)


def test_result_dtype():
    f16, i32 = np.dtype(np.float16), np.dtype(np.int32)
    assert result_dtype(("lt", X, Y), [f16, f16]) == np.bool_
    assert result_dtype(("cast:bfloat16", X), [i32]) == np.dtype(ml_dtypes.bfloat16)
    assert result_dtype(("pow", X, Y), [i32, np.float32]) == i32
    assert result_dtype(("where", ("isnan", Y), X, X), [i32, f16]) == i32
    assert result_dtype(("isinf", X, 1, 0), [f16]) == np.bool_


def test_errors():
    f = np.ones(3, np.float32)
    with pytest.raises(ArgumentError, match="unknown function"):
        result_dtype(("cube", X), [f.dtype])
    with pytest.raises(ArgumentError, match="operand"):
        result_dtype(("add", X), [f.dtype])
    with pytest.raises(ArgumentError, match="dtypes"):
        result_dtype(("add", X, Y), [f.dtype, np.dtype(np.float64)])
    with pytest.raises(UnsupportedError, match="int32"):
        result_dtype(("exp", X), [np.int32])
    with pytest.raises(ArgumentError, match="names no input"):
        result_dtype(("neg", ("in", 2)), [f.dtype])
    with pytest.raises(ArgumentError, match="not an expression"):
        result_dtype(["neg", X], [f.dtype])
    with pytest.raises(ArgumentError, match="produces"):
        run_expr(("lt", X, X), [f], np.empty(3, np.float32))
    with pytest.raises(ArgumentError, match="does not broadcast"):
        run_expr(("neg", X), [np.ones(4, np.float32)], np.empty(3, np.float32))
    with pytest.raises(ArgumentError, match="constant"):
        run_expr(("add", X, ("const", "abc", "float32")), [f], np.empty(3, np.float32))
