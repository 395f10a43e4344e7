"""tests/graph: the graph IR and its passes, isolated from the operator library being written.

The IR and pass tests (each module opts in with `pytestmark`) run against a stand-in registry
(`ref_registry`) instead of kaiyuan's real OpDefs: one OpDef per ONNX schema version (opsets, inputs, outputs and attributes from onnx's own
schemas) whose `infer` runs the node once in onnx's reference evaluator on stand-in inputs (ones,
zeros for integers; the real values for `value_inputs`). So the graph engine is tested on every
ONNX operator with ONNX's own shape rules, and through `schema.lookup` only, as in production.
`kaiyuan.FusedTest` (domain "kaiyuan", 1-2 inputs, result typed like input 0) stands for
kaiyuan's own fused operators. Tests that need the real OpDefs use `real_registry` (and skip
until the operator modules register what they need).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from kaiyuan.ops import schema
from kaiyuan.ops.schema import REQUIRED, OpDef, TensorType

# Formal input names whose values decide output shapes: such inputs must be constant at plan time.
VALUE_INPUT_NAMES = {"shape", "axes", "starts", "ends", "steps", "repeats", "pads", "split", "K", "roi", "scales",
                     "sizes", "depth", "axis", "k", "start", "limit", "delta"}


def _stand_in(t: TensorType) -> np.ndarray:
    fill = 0 if t.dtype.kind in "iub" else 1
    return np.full(t.shape, fill, t.dtype)


def _ref_infer(op_type: str, version: int, n_outputs: int, domain: str):
    def infer(types, attrs, consts):
        inputs = [None if t is None else (c if c is not None else _stand_in(t)) for t, c in zip(types, consts)]
        names = ["" if x is None else f"x{i}" for i, x in enumerate(inputs)]
        n = n_outputs
        if op_type == "Split":  # the one op with a variadic number of outputs
            n = attrs.get("num_outputs") or (len(inputs[1]) if len(inputs) > 1 and inputs[1] is not None else 1)
        node = helper.make_node(op_type, names, [f"y{i}" for i in range(n)], domain=domain or None)
        node.attribute.extend(helper.make_attribute(k, numpy_helper.from_array(v) if isinstance(v, np.ndarray) else v)
                              for k, v in attrs.items() if v is not None)
        feeds = {n: x for n, x in zip(names, inputs) if n}
        graph = helper.make_graph(
            [node], "infer",
            [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(x.dtype), x.shape) for n, x in feeds.items()],
            [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in node.output])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid(domain, version)])
        with np.errstate(all="ignore"):  # stand-in zeros may divide by zero: only shapes matter here
            outs = ReferenceEvaluator(model).run(None, feeds)
        return [TensorType(np.asarray(o).dtype, tuple(np.shape(o))) for o in outs]
    return infer


def _build_registry() -> dict:
    reg: dict = {}
    by_op: dict = {}
    for s in onnx.defs.get_all_schemas_with_history():
        if s.domain == "" and not s.deprecated:
            by_op.setdefault(s.name, []).append(s)
    for name, versions in by_op.items():
        versions.sort(key=lambda s: s.since_version)
        for k, s in enumerate(versions):
            until = versions[k + 1].since_version - 1 if k + 1 < len(versions) else 10**9
            n_out = min(s.max_output, 8)
            reg.setdefault(("", name), []).append(OpDef(
                op_type=name, infer=_ref_infer(name, max(s.since_version, min(until, 21)), n_out, ""), run=None,
                since=s.since_version, until=until, inputs=(s.min_input, s.max_input),
                outputs=(s.min_output, s.max_output),
                attrs={a: (REQUIRED if v.required else None) for a, v in s.attributes.items()},
                value_inputs=tuple(i for i, inp in enumerate(s.inputs)
                                   if inp.name in VALUE_INPUT_NAMES or (name == "ConstantOfShape" and i == 0))))
    fused = OpDef(op_type="FusedTest", domain="kaiyuan", infer=lambda types, attrs, consts: [types[0]], run=None,
                  inputs=(1, 2), attrs={"alpha": 1.0})
    reg[("kaiyuan", "FusedTest")] = [fused]
    return reg


_REGISTRY_CACHE: dict = {}


@pytest.fixture
def ref_registry(monkeypatch):
    """Replace kaiyuan's OpDef registry by the reference stand-in for the test (restored after);
    the real definition modules are not imported. Opt-in: a module that wants it for every test
    says `pytestmark = pytest.mark.usefixtures("ref_registry")`."""
    if not _REGISTRY_CACHE:
        _REGISTRY_CACHE.update(_build_registry())
    reg = {k: list(v) for k, v in _REGISTRY_CACHE.items()}
    monkeypatch.setattr(schema, "_REGISTRY", reg)
    monkeypatch.setattr(schema, "load_all", lambda: None)
    yield reg


@pytest.fixture
def real_registry():
    """kaiyuan's real OpDefs (the definition modules are imported; skip if they do not import)."""
    try:
        schema.load_all()
    except Exception as e:  # noqa: BLE001 - the operator modules are written alongside these tests
        pytest.skip(f"the operator definition modules do not import: {type(e).__name__}: {e}")
    return schema._REGISTRY
