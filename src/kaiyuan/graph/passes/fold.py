"""Constant folding: compute, once at compile time, every op whose inputs are all known.

What: an ai.onnx op whose inputs are all `kyg.Constant`s or `kyg.weight`s is evaluated and its
results replace it (inline constants when small, new weights otherwise). `Shape` and `Size` only
read their input's shape, so they fold as soon as that shape is static, whatever computes the
values. Folding evaluates the op with onnx's reference evaluator (`onnx.reference`) on a one-node
model: the meaning is ONNX's own, and no kernel is compiled for a value computed once.

Why: shape arithmetic (Shape → Gather → Concat → Reshape) becomes constant, which the planner
needs (Reshape's shape, Slice's starts must be known at plan time), and work on weights
(Transpose of a weight, DequantizeLinear of int8 weights) is done once instead of every run.

Limits: an op is not folded when an output would exceed `FOLD_MAX_ELEMENTS` elements (so a
ConstantOfShape cannot blow up the model), when it is random (`RandomNormal`, `Bernoulli`, ...),
when it is one of kaiyuan's own ops (the reference evaluator does not know them), or when the
reference evaluator cannot run it (e.g. bfloat16 inputs): then it stays and runs as a kernel.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx
from onnx import helper
from onnx.reference import ReferenceEvaluator

from ...ops.schema import TensorType
from ..attributes import is_static, type_dtype, type_shape
from ..dialect import ConstantOp, KygOp, NoneOp, WeightOp, attrs, is_absent, opdef_of, op_type, where
from ..errors import with_node
from ..model import GraphModel
from ..onnx_attrs import schema_attr_types, to_onnx
from ..rewrite import constant_value, erase_dead, prune_weights, replace_by_constants

log = logging.getLogger("kaiyuan.graph")

FOLD_MAX_ELEMENTS = 1 << 24
RANDOM_OPS = frozenset({"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
                        "Bernoulli"})
SHAPE_ONLY_OPS = frozenset({"Shape", "Size"})  # results depend on the input's shape, not its values


def fold_constants(model: GraphModel) -> GraphModel:
    """Replace every op whose inputs are all constant by its results (see the module docstring)."""
    model = model.copy()
    opset = model.opset
    for op in list(model.block.ops):
        if isinstance(op, KygOp):
            try_fold(model, op, opset)
    prune_weights(model)
    return model


def known_inputs(model: GraphModel, op: KygOp) -> list | None:
    """The op's input values when all are known (None for absent inputs), else None. A shape-only
    op gets a zero-strided stand-in for a non-constant input of static shape."""
    values = []
    for v in op.operands:
        if is_absent(v):
            values.append(None)
            continue
        c = constant_value(model, v)
        if c is None and op_type(op)[1] in SHAPE_ONLY_OPS and is_static(v.type):
            c = np.broadcast_to(np.zeros((), type_dtype(v.type)), type_shape(v.type))
        if c is None:
            return None
        values.append(c)
    return values


def try_fold(model: GraphModel, op: KygOp, opset: int) -> bool:
    """Fold `op` in place when it can be (see the module docstring); True when it was."""
    domain, name = op_type(op)
    if domain or name in RANDOM_OPS or not op.operands:
        return False
    values = known_inputs(model, op)
    if values is None:
        return False
    d = opdef_of(op, opset)
    given = attrs(op)
    types = [None if a is None else TensorType(np.dtype(a.dtype), tuple(a.shape)) for a in values]
    consts = [a if i in d.value_inputs else None for i, a in enumerate(values)]
    with with_node(op):
        out_types = d.infer(types, d.resolve_attrs(given, where(op).removesuffix(": ")), consts)
    out_types = list(out_types)[:len(op.results)]
    if any(t.size() > FOLD_MAX_ELEMENTS for t in out_types):
        return False
    try:
        outs = evaluate(name, given, values, len(op.results), opset)
    except Exception as e:  # noqa: BLE001 - any failure just means the op runs as a kernel
        log.debug("%snot folded: the reference evaluator failed: %s", where(op), e)
        return False
    arrays = [np.asarray(o).astype(t.dtype, copy=False) for o, t in zip(outs, out_types)]
    if any(a.shape != tuple(t.shape) for a, t in zip(arrays, out_types)):
        log.warning("%snot folded: the reference evaluator gives shapes %s, the OpDef infers %s", where(op),
                    [a.shape for a in arrays], [t.shape for t in out_types])
        return False
    owners = [v.owner for v in op.operands if isinstance(v.owner, (ConstantOp, WeightOp, NoneOp))]
    replace_by_constants(model, op, arrays)
    erase_dead(owners)
    return True


def evaluate(op_type_: str, given: dict, inputs: list, n_outputs: int, opset: int) -> list[np.ndarray]:
    """Run one ai.onnx node on numpy inputs (None for an absent input) with onnx's reference
    evaluator; `given` holds the node's attributes as plain values."""
    names = ["" if x is None else f"x{i}" for i, x in enumerate(inputs)]
    outs = [f"y{i}" for i in range(n_outputs)]
    types = schema_attr_types(op_type_, opset)
    node = helper.make_node(op_type_, names, outs)
    # attributes starting with "_" are the engine's own (e.g. `_num_outputs`), not ONNX's
    node.attribute.extend(to_onnx(k, v, types.get(k)) for k, v in given.items() if not k.startswith("_"))
    feeds = {n: x for n, x in zip(names, inputs) if n}
    graph = helper.make_graph(
        [node], "fold",
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(x.dtype), x.shape) for n, x in feeds.items()],
        [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in outs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return list(ReferenceEvaluator(model).run(None, feeds))
