"""Simplification: remove data-movement ops that do nothing and merge chains of them.

What, rule by rule (applied until nothing changes):
  1. Identity, and Dropout in inference (no `training_mode`, or a constant false one, and its
     mask unused), pass their input through: uses of the result take the input.
  2. Cast to the dtype the input already has, and CastLike between equal dtypes, are removed.
  3. Reshape, Squeeze, Unsqueeze, Flatten and Expand whose (static) result shape equals their
     input's are removed.
  4. A chain of Reshape/Squeeze/Unsqueeze/Flatten becomes one Reshape of the chain's input:
     to the static result shape when it is known, else (Reshape of Reshape) to the outer shape
     when that is a constant with no 0 entries that would copy a dim of the inner result.
  5. Transpose of Transpose is one Transpose with the composed permutation; a Transpose with
     the identity permutation is removed.
  6. A Transpose that only moves dims of size 1 is a Reshape (it keeps the element order).
The rewritten op keeps the node name of the op that produced the final value; ops the rewrites
leave unused are erased.

Why: exporters write these ops for the framework's bookkeeping (PyTorch's `view`/`flatten`
chains, `.to(dtype)` on a tensor already of that dtype, transposes that cancel). Each one costs
a launch and often a copy; a Reshape is a view the planner aliases for free, and fewer ops give
fusion longer chains to work on.
"""

from __future__ import annotations

import numpy as np
from onnx import helper
from xdsl.ir import Operation, SSAValue

from ..attributes import is_static, type_dtype, type_shape
from ..dialect import KygOp, attrs, is_absent, make_op, node_name, op_type
from ..model import GraphModel
from ..rewrite import constant_value, erase_dead, insert_constant, replace_results

RESHAPE_LIKE = frozenset({"Reshape", "Squeeze", "Unsqueeze", "Flatten"})
MAX_ROUNDS = 16


def simplify(model: GraphModel) -> GraphModel:
    """Apply the rules of the module docstring until none applies."""
    model = model.copy()
    for _ in range(MAX_ROUNDS):
        changed = False
        for op in list(model.block.ops):
            if op.parent is not None and isinstance(op, KygOp) and op_type(op)[0] == "":
                changed |= any(rule(model, op) for rule in RULES)
        if not changed:
            break
    return model


def _producer(v: SSAValue) -> KygOp | None:
    return v.owner if isinstance(v.owner, KygOp) and op_type(v.owner)[0] == "" else None


def _forward(op: Operation, value: SSAValue) -> bool:
    """Replace op's first result (the only one used) by `value`; erase op and what it leaves unused."""
    owners = [v.owner for v in op.operands if isinstance(v.owner, Operation)]
    replace_results(op, [value])
    erase_dead(owners)
    return True


def _replace(model: GraphModel, op: Operation, name: str, operands: list, attributes: dict) -> bool:
    """Replace op by a new `name` op with op's result type and node name."""
    new = make_op(name, operands, [op.results[0].type], attributes, node_name(op))
    op.parent_block().insert_op_before(new, op)
    owners = [v.owner for v in op.operands if isinstance(v.owner, Operation)]
    replace_results(op, list(new.results))
    erase_dead(owners)
    return True


def _reshape_to(model: GraphModel, op: Operation, x: SSAValue, shape: tuple) -> bool:
    """Replace op by Reshape(x, shape) (shape static; allowzero so a 0 dim means 0)."""
    attributes = {}
    if 0 in shape:
        if model.opset < 14:  # allowzero is opset 14: a 0 would copy the input's dim
            return False
        attributes["allowzero"] = 1
    target = insert_constant(model, np.array(shape, np.int64), op, f"{node_name(op)}.shape")
    return _replace(model, op, "Reshape", [x, target], attributes)


# -------------------------------------------------------------------------------------- rules


def identity(model: GraphModel, op: KygOp) -> bool:
    name = op_type(op)[1]
    if name == "Identity":
        return _forward(op, op.operands[0])
    if name == "Dropout" and not any(r.uses for r in op.results[1:]):
        mode = op.operands[2] if len(op.operands) > 2 else None
        if mode is None or is_absent(mode) or _is_false(model, mode):
            return _forward(op, op.operands[0])
    return False


def _is_false(model: GraphModel, v: SSAValue) -> bool:
    c = constant_value(model, v)
    return c is not None and not bool(np.asarray(c).any())


def noop_cast(model: GraphModel, op: KygOp) -> bool:
    name = op_type(op)[1]
    src = type_dtype(op.operands[0].type)
    if name == "Cast" and src is not None and "to" in op.attributes:
        if np.dtype(helper.tensor_dtype_to_np_dtype(attrs(op)["to"])) == src:
            return _forward(op, op.operands[0])
    if name == "CastLike" and src is not None and src == type_dtype(op.operands[1].type):
        return _forward(op, op.operands[0])
    return False


def noop_reshape(model: GraphModel, op: KygOp) -> bool:
    if op_type(op)[1] not in RESHAPE_LIKE | {"Expand"}:
        return False
    x, y = op.operands[0].type, op.results[0].type
    if is_static(x) and is_static(y) and type_shape(x) == type_shape(y) and type_dtype(x) == type_dtype(y):
        return _forward(op, op.operands[0])
    return False


def merge_reshapes(model: GraphModel, op: KygOp) -> bool:
    inner = _producer(op.operands[0])
    if op_type(op)[1] not in RESHAPE_LIKE or inner is None or op_type(inner)[1] not in RESHAPE_LIKE:
        return False
    x = inner.operands[0]
    if is_static(op.results[0].type):
        return _reshape_to(model, op, x, type_shape(op.results[0].type))
    if op_type(op)[1] == op_type(inner)[1] == "Reshape":
        shape = constant_value(model, op.operands[1])
        if shape is not None and (attrs(op).get("allowzero", 0) or 0 not in shape.tolist()):
            return _replace(model, op, "Reshape", [x, op.operands[1]], attrs(op))
    return False


def _perm(op: KygOp) -> list[int] | None:
    perm = attrs(op).get("perm")
    if perm is None:
        shape = type_shape(op.operands[0].type)
        return None if shape is None else list(range(len(shape)))[::-1]
    return list(perm)


def transposes(model: GraphModel, op: KygOp) -> bool:
    if op_type(op)[1] != "Transpose" or (perm := _perm(op)) is None:
        return False
    if perm == sorted(perm):
        return _forward(op, op.operands[0])
    inner = _producer(op.operands[0])
    if inner is None or op_type(inner)[1] != "Transpose" or (first := _perm(inner)) is None:
        return False
    composed = [first[i] for i in perm]
    if composed == sorted(composed):
        return _forward(op, inner.operands[0])
    return _replace(model, op, "Transpose", [inner.operands[0]], {"perm": composed})


def transpose_as_reshape(model: GraphModel, op: KygOp) -> bool:
    if op_type(op)[1] != "Transpose" or (perm := _perm(op)) is None:
        return False
    shape = type_shape(op.operands[0].type)
    if not is_static(op.operands[0].type) or 0 in shape:
        return False
    moved = [i for i in perm if shape[i] != 1]
    if moved != sorted(moved):
        return False
    return _reshape_to(model, op, op.operands[0], tuple(shape[i] for i in perm))


RULES = (identity, noop_cast, noop_reshape, merge_reshapes, transposes, transpose_as_reshape)
