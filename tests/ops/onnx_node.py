"""Run one ONNX operator through its kaiyuan `OpDef` (no graph engine) and through onnx's reference
evaluator, so each operator's tests compare the two on the same inputs."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper
from onnx.reference import ReferenceEvaluator

import kaiyuan as ky
from kaiyuan.ops.schema import TensorType, lookup


def run_kaiyuan(op_type: str, inputs: list, attrs: dict | None = None, opset: int = 18, domain: str = "",
                device: str = "cpu") -> list[np.ndarray]:
    """Outputs of `op_type` on `inputs` (numpy arrays, None for an absent optional input)."""
    op = lookup(op_type, opset, domain, where=f"test node {op_type}: ")
    attrs = op.resolve_attrs(attrs or {}, f"test node {op_type}")
    consts = [x if i in op.value_inputs else None for i, x in enumerate(inputs)]
    types = [None if x is None else TensorType(np.dtype(x.dtype), tuple(x.shape)) for x in inputs]
    out_types = op.infer(types, attrs, consts)
    if op.view:
        return [np.ascontiguousarray(inputs[0]).reshape(out_types[0].shape)]
    outputs = [np.empty(t.shape, t.dtype) for t in out_types]
    with ky.device(device):
        op.run(inputs, attrs, consts, outputs)
    return outputs


def run_reference(op_type: str, inputs: list, attrs: dict | None = None, opset: int = 18, n_outputs: int = 1,
                  domain: str = "") -> list[np.ndarray]:
    """The same node evaluated by `onnx.reference.ReferenceEvaluator`."""
    names = [f"x{i}" if x is not None else "" for i, x in enumerate(inputs)]
    outs = [f"y{i}" for i in range(n_outputs)]
    node = helper.make_node(op_type, names, outs, domain=domain or None, **(attrs or {}))
    feeds = {n: x for n, x in zip(names, inputs) if n}
    graph = helper.make_graph([node], "t", [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(x.dtype), x.shape)
                                            for n, x in feeds.items()],
                              [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in outs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(domain, opset)])
    return list(ReferenceEvaluator(model).run(None, feeds))


def check(op_type: str, inputs: list, attrs: dict | None = None, opset: int = 18, rtol: float = 1e-5,
          atol: float = 1e-6, device: str = "cpu", n_outputs: int = 1) -> list[np.ndarray]:
    """Assert kaiyuan's outputs match the reference's (dtype, shape and values); returns kaiyuan's."""
    got = run_kaiyuan(op_type, inputs, attrs, opset, device=device)
    want = run_reference(op_type, inputs, attrs, opset, n_outputs=len(got) or n_outputs)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        w = np.asarray(w)
        assert g.dtype == w.dtype, (g.dtype, w.dtype)
        assert g.shape == w.shape, (g.shape, w.shape)
        if g.dtype.kind in "fc" or g.dtype.name == "bfloat16":
            np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=rtol, atol=atol)
        else:
            np.testing.assert_array_equal(g, w)
    return got
