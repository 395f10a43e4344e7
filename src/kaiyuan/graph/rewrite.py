"""Small IR edits shared by inference and the passes: read constants, replace an op's results by
constants or other values, erase ops left without users.

Small constants are written inline (`kyg.Constant`) so shape arithmetic stays readable in dumps:
integer and bool tensors of at most `INLINE_MAX_ELEMENTS` elements, float tensors of at most
`INLINE_MAX_FLOATS` (scalars such as a GELU's 0.5; a bias is a weight). Larger ones become weights
(`kyg.weight`, value in GraphModel.weights) so the IR text stays small.
"""

from __future__ import annotations

import numpy as np
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.rewriter import Rewriter

from .attributes import dense_array, element_type, tensor_type
from .dialect import ConstantOp, WeightOp, make_constant, make_weight, node_name
from .model import GraphModel, value_name

INLINE_MAX_ELEMENTS = 16
INLINE_MAX_FLOATS = 4


def inline(array: np.ndarray) -> bool:
    """Whether a constant is small enough to be written inline (see the module docstring)."""
    limit = INLINE_MAX_FLOATS if array.dtype.kind == "f" or array.dtype.name == "bfloat16" else INLINE_MAX_ELEMENTS
    return array.size <= limit


def constant_value(model: GraphModel, v: SSAValue) -> np.ndarray | None:
    """The value of `v` when a `kyg.Constant` or `kyg.weight` defines it, else None."""
    owner = v.owner
    if isinstance(owner, ConstantOp):
        return dense_array(owner.value)
    if isinstance(owner, WeightOp):
        return model.weights[owner.weight_name.data]
    return None


def insert_constant(model: GraphModel, array: np.ndarray, before: Operation, name: str) -> SSAValue:
    """A new constant (inline when small, else a weight called `name`, made unique) placed
    before `before`; `name` also becomes the constant's location."""
    array = np.asarray(array)
    element_type(array.dtype)  # raise early for a dtype the IR cannot hold
    if inline(array):
        op = make_constant(array, name)
    else:
        wname = name
        n = 1
        while wname in model.weights:
            wname, n = f"{name}.{n}", n + 1
        model.weights[wname] = array
        op = make_weight(wname, tensor_type(array.dtype, array.shape))
    before.parent_block().insert_op_before(op, before)
    op.results[0].name_hint = value_name(name)
    return op.results[0]


def retype(v: SSAValue, t: Attribute) -> SSAValue:
    """Give `v` the type `t` (xDSL values are immutable: a new value takes v's place and uses)."""
    if v.type == t:
        return v
    return Rewriter.replace_value_with_new_type(v, t)


def replace_results(op: Operation, values: list[SSAValue]) -> None:
    """Point every use of op's results at `values` (same order) and erase op."""
    for r, v in zip(op.results, values):
        if v.name_hint is None and r.name_hint is not None:
            v.name_hint = r.name_hint
        r.replace_all_uses_with(v)
    erase(op)


def replace_by_constants(model: GraphModel, op: Operation, arrays: list[np.ndarray]) -> None:
    """Replace op's results by constants holding `arrays` (named after op's node)."""
    base = node_name(op)
    values = [insert_constant(model, a, op, base if len(arrays) == 1 else f"{base}:{i}") for i, a in enumerate(arrays)]
    for v, r in zip(values, op.results):
        v.name_hint = r.name_hint or v.name_hint  # the constant stands for the value: keep its name
    replace_results(op, values)


def erase_dead(ops: list[Operation]) -> None:
    """Erase those of `ops` (and, transitively, their operands' owners) that have no users left.
    Graph inputs and the return are never touched."""
    work = list(ops)
    while work:
        op = work.pop()
        if op.parent is None:  # already erased through another path
            continue
        if op.name.startswith("kyg.") and all(not r.uses for r in op.results):
            owners = [v.owner for v in op.operands if isinstance(v.owner, Operation)]
            erase(op)
            work.extend(owners)


def erase(op: Operation) -> None:
    """Remove an op (its results must be unused) from its block and drop it."""
    op.detach()
    op.erase()


def prune_weights(model: GraphModel) -> None:
    """Drop the weights no `kyg.weight` names any more."""
    used = {op.weight_name.data for op in model.block.ops if isinstance(op, WeightOp)}
    for name in [n for n in model.weights if n not in used]:
        del model.weights[name]
