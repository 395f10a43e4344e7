"""The nn operator definitions as a whole: registration over opsets 13-21, the `out=` parameter of
the eager GEMM/conv/attention functions they run on, and ky.Tensor operands (what `run` gets on
devices other than the host). Per-family tests: test_nn_gemm, test_nn_quant, test_nn_conv,
test_nn_pool, test_nn_einsum, test_nn_attention.

`run_ort` (used by the family tests where onnx's reference evaluator is wrong or partial: group
ConvTranspose, output_shape, ceil_mode windows, per-row zero points) runs one node on onnxruntime.
"""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

import kaiyuan as ky
from kaiyuan import ops
from kaiyuan.ops.schema import lookup
from kaiyuan.runtime.errors import ArgumentError, UnsupportedError

from .onnx_node import check, run_kaiyuan, run_reference

ONNX_OPS = ["MatMul", "Gemm", "MatMulInteger", "QuantizeLinear", "DequantizeLinear", "Conv", "ConvTranspose",
            "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Einsum", "LRN"]


def run_ort(op_type, inputs, attrs=None, opset=18, out_dtypes=None):
    """One node run by onnxruntime (outputs typed like input 0 unless out_dtypes says otherwise)."""
    names = [f"x{i}" if x is not None else "" for i, x in enumerate(inputs)]
    out_dtypes = out_dtypes or [inputs[0].dtype]
    outs = [f"y{i}" for i in range(len(out_dtypes))]
    feeds = {n: x for n, x in zip(names, inputs) if n}
    graph = helper.make_graph(
        [helper.make_node(op_type, names, outs, **(attrs or {}))], "t",
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(x.dtype), x.shape) for n, x in feeds.items()],
        [helper.make_tensor_value_info(o, helper.np_dtype_to_tensor_dtype(np.dtype(d)), None)
         for o, d in zip(outs, out_dtypes)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


@pytest.mark.parametrize("opset", [13, 17, 19, 21])
def test_every_op_is_registered_over_the_opsets(opset):
    for op in ONNX_OPS:
        d = lookup(op, opset)
        assert d.op_type == op and d.run is not None
        assert all(np.dtype(n) is not None for n in d.dtypes)  # numpy names
    for op in ("Linear", "Attention"):
        assert lookup(op, 1, domain="kaiyuan").domain == "kaiyuan"
    assert "block_size" in lookup("QuantizeLinear", 21).attrs and "block_size" not in lookup("QuantizeLinear", 19).attrs
    assert ("dilations" in lookup("AveragePool", opset).attrs) == (opset >= 19)


def test_unknown_attribute_is_unsupported():
    with pytest.raises(UnsupportedError, match="storage_order"):
        lookup("AveragePool", 18).resolve_attrs({"storage_order": 1}, "node")


def test_out_parameter_of_the_eager_functions(device, rng):
    a, b = rng.standard_normal((3, 5)).astype(np.float32), rng.standard_normal((5, 4)).astype(np.float32)
    out = np.full((3, 4), np.nan, np.float32)
    assert ops.matmul(a, b, out=out) is out
    np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-6)
    v = np.empty((4,), np.float32)  # 1-D operand: the dropped dim is not in out
    np.testing.assert_allclose(ops.matmul(a[0], b, out=v), a[0] @ b, rtol=1e-5, atol=1e-6)
    lin = np.empty((3, 4), np.float32)
    assert ops.linear(a, b.T, bias=b[0], activation="relu", out=lin) is lin
    np.testing.assert_allclose(lin, np.maximum(a @ b + b[0], 0), rtol=1e-5, atol=1e-6)
    x, w = rng.standard_normal((3, 5, 6)).astype(np.float32), rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    y = np.empty((2, 3, 4), np.float32)  # unbatched conv
    assert ops.conv2d(x, w, out=y) is y
    np.testing.assert_allclose(y, ops.conv2d(x, w), rtol=1e-6)
    q = rng.standard_normal((2, 3, 4)).astype(np.float32)
    o = np.empty((2, 3, 4), np.float32)
    assert ops.scaled_dot_product_attention(q, q, q, out=o) is o
    np.testing.assert_allclose(o, ops.scaled_dot_product_attention(q, q, q), rtol=1e-6)


def test_out_parameter_errors(rng):
    a = rng.standard_normal((3, 5)).astype(np.float32)
    with pytest.raises(ArgumentError, match="shape"):
        ops.matmul(a, a.T, out=np.empty((3, 4), np.float32))
    with pytest.raises(ArgumentError, match="dtype"):
        ops.matmul(a, a.T, out=np.empty((3, 3), np.float64))
    with pytest.raises(ArgumentError, match="contiguous"):
        ops.matmul(a, a.T, out=np.empty((3, 6), np.float32)[:, ::2])
    with pytest.raises(ArgumentError, match="numpy array or a ky.Tensor"):
        ops.matmul(a, a.T, out=[[0.0] * 3] * 3)


def test_tensor_operands_through_run(rng):
    """On devices other than the host `run` gets ky.Tensors: transposed views of them work."""
    from kaiyuan.ops.schema import TensorType

    a, b, c = (rng.standard_normal(s).astype(np.float32) for s in ((5, 3), (4, 5), (4,)))
    op = lookup("Gemm", 13)
    attrs = op.resolve_attrs({"transA": 1, "transB": 1, "alpha": 0.5}, "test")
    types = [TensorType(x.dtype, x.shape) for x in (a, b, c)]
    (t,) = op.infer(types, attrs, [None] * 3)
    y = ky.empty(t.shape, "fp32", "cpu")
    op.run([ky.tensor(a), ky.tensor(b), ky.tensor(c)], attrs, [None] * 3, [y])
    np.testing.assert_allclose(y.numpy(), 0.5 * (a.T @ b.T) + c, rtol=1e-5, atol=1e-5)


def test_a_wrong_attribute_gives_a_different_answer(rng):
    """The comparisons the family tests rely on can fail: transA changes the result."""
    a = rng.standard_normal((4, 4)).astype(np.float32)
    got = run_kaiyuan("Gemm", [a, a], {"transA": 1})[0]
    want = run_reference("Gemm", [a, a], {"transA": 0})[0]
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_ort_helper_agrees_with_the_reference(rng):
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    attrs = {"kernel_shape": [2, 2]}
    got = check("MaxPool", [x], attrs)
    np.testing.assert_array_equal(got[0], run_ort("MaxPool", [x], attrs)[0])
    assert onnx.__version__
