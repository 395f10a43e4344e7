"""The ONNX backend node test cases (generated in memory by onnx) of every reduction-family
operator, run through kaiyuan's OpDefs directly (no graph engine), on cpu.

Expected failures, with reasons: BatchNormalization with training_mode=1 (kaiyuan implements
inference only: UnsupportedError). Tolerance: 1e-3 relative / 1e-4 absolute, the precision the
cases' expected outputs are stored with.
"""

import functools

import numpy as np
import pytest
from onnx.backend.test.case.node import collect_testcases
from onnx.helper import get_attribute_value

from kaiyuan.ops.schema import TensorType, lookup
from kaiyuan.runtime.errors import UnsupportedError

OPS = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
       "ReduceLogSumExp", "ReduceSumSquare", "ArgMax", "ArgMin", "Softmax", "LogSoftmax", "Hardmax", "CumSum", "TopK",
       "LayerNormalization", "InstanceNormalization", "BatchNormalization", "LpNormalization",
       "MeanVarianceNormalization", "GroupNormalization"]
EXPECTED_FAILURES = {"test_batchnorm_example_training_mode": "training mode",
                     "test_batchnorm_epsilon_training_mode": "training mode"}


@functools.lru_cache(maxsize=1)
def cases_by_op() -> dict:
    """op type -> [(case name, node, opset, graph input names, data sets)] of single-node cases."""
    out: dict = {}
    for case in collect_testcases(None):
        nodes = case.model.graph.node
        if len(nodes) != 1 or nodes[0].op_type not in OPS:
            continue
        opset = next(o.version for o in case.model.opset_import if o.domain in ("", "ai.onnx"))
        names = [i.name for i in case.model.graph.input]
        out.setdefault(nodes[0].op_type, []).append((case.name, nodes[0], opset, names, case.data_sets))
    return out


def run_node(node, opset, names, inputs):
    op = lookup(node.op_type, opset)
    attrs = {a.name: get_attribute_value(a) for a in node.attribute}
    if "_num_outputs" in op.attrs:          # what the graph engine passes: the node's output count
        attrs["_num_outputs"] = len([o for o in node.output if o])
    attrs = op.resolve_attrs(attrs, node.name)
    feeds = dict(zip(names, inputs))
    ins = [feeds[n] if n else None for n in node.input]
    consts = [x if i in op.value_inputs else None for i, x in enumerate(ins)]
    types = [None if x is None else TensorType(np.dtype(x.dtype), tuple(x.shape)) for x in ins]
    outs = [np.empty(t.shape, t.dtype) for t in op.infer(types, attrs, consts)]
    op.run(ins, attrs, consts, outs)
    return outs


@pytest.mark.parametrize("op_type", OPS)
def test_onnx_node_cases(op_type):
    cases = cases_by_op().get(op_type, [])
    assert cases, f"onnx has no node case for {op_type}"
    for name, node, opset, names, data_sets in cases:
        for inputs, expected in data_sets:
            if name in EXPECTED_FAILURES:
                with pytest.raises(UnsupportedError):
                    run_node(node, opset, names, inputs)
                continue
            got = run_node(node, opset, names, inputs)
            assert len(got) == len(expected), name
            for g, w in zip(got, expected):
                w = np.asarray(w)
                assert (g.shape, g.dtype) == (w.shape, w.dtype), name
                if g.dtype.kind == "f" or g.dtype.name == "bfloat16":
                    np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=1e-3, atol=1e-4,
                                               err_msg=name)
                else:
                    np.testing.assert_array_equal(g, w, err_msg=name)
