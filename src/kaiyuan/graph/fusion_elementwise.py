"""fuse_elementwise: chains of element-wise operators → one `kaiyuan.Elementwise` op.

Every ONNX element-wise operator has an expression (kaiyuan.ops.elementwise: `expression(op_type,
opset, dtypes, attrs)`). Walking the block in order, an element-wise op absorbs the element-wise
ops that produce its operands when their result has no other user and is not a graph output; the
group becomes one op whose `expr` is the spliced expression over the group's outside inputs
(scalar constants are written into the expression). It then runs as one generated kernel: the
intermediates stay in registers and the chain costs one launch instead of one per node.

Groups of one op are left alone (the op already is one kernel). Leaves must broadcast to the
group's output shape, so an op whose output shape is not the broadcast of its inputs is a group
boundary.
"""

from __future__ import annotations

import numpy as np
from xdsl.ir import Operation, SSAValue

from ..ops.elementwise import expression
from ..ops.fused import format_expr
from .attributes import type_dtype, type_shape
from .dialect import is_absent, make_op, node_name, op_type, opdef_of
from .dialect import attrs as op_attrs
from .fusion import note, place, users
from .model import GraphModel
from .rewrite import constant_value


def _expr_of(model: GraphModel, op: Operation):
    """The op's own expression over its operands (or None when it is not element-wise)."""
    domain, kind = op_type(op)
    if domain != "" or len(op.results) != 1:
        return None
    try:
        d = opdef_of(op, model.opset)
        if d.view:
            return None
        dtypes = [None if is_absent(v) else type_dtype(v.type) for v in op.operands]
        return expression(kind, model.opset, dtypes, d.resolve_attrs(op_attrs(op), node_name(op)))
    except (KeyError, Exception):  # noqa: BLE001 - anything the expression builder refuses is not fusable
        return None


def _broadcasts(shape: tuple, to: tuple) -> bool:
    return len(shape) <= len(to) and all(a in (1, b) for a, b in zip(shape[::-1], to[::-1]))


class _Group:
    """A growing fused group: its ops, its outside inputs, the expression builder."""

    def __init__(self, model: GraphModel, root: Operation, exprs: dict):
        self.model, self.exprs, self.ops, self.leaves = model, exprs, [], []
        self.shape = type_shape(root.results[0].type)
        self.expr = self.splice(root)

    def leaf(self, v: SSAValue):
        c = constant_value(self.model, v)
        if c is not None and c.size == 1:
            return ("const", c.reshape(()).item(), np.dtype(c.dtype).name)
        if v not in self.leaves:
            self.leaves.append(v)
        return ("in", self.leaves.index(v))

    def absorbable(self, v: SSAValue) -> bool:
        p = v.owner
        return (isinstance(p, Operation) and p in self.exprs and len(users(v)) == 1
                and not any(r is v for r in self.model.returned()) and _broadcasts(type_shape(v.type), self.shape))

    def splice(self, op: Operation):
        self.ops.append(op)
        present = [v for v in op.operands if not is_absent(v)]
        subs = []
        for v in present:
            if self.absorbable(v):
                subs.append(self.splice(v.owner))
            elif _broadcasts(type_shape(v.type), self.shape):
                subs.append(self.leaf(v))
            else:
                raise ValueError("operand does not broadcast to the group's shape")
        return _substitute(self.exprs[op], subs)


def _substitute(expr, subs: list):
    if isinstance(expr, tuple) and expr and expr[0] == "in":
        return subs[expr[1]]
    if isinstance(expr, tuple):
        return tuple(_substitute(e, subs) if isinstance(e, tuple) else e for e in expr)
    return expr


def fuse_elementwise(model: GraphModel) -> GraphModel:
    """Chains of element-wise ops → kaiyuan.Elementwise (see the module docstring)."""
    model = model.copy()
    exprs = {op: e for op in model.block.ops if (e := _expr_of(model, op)) is not None}
    done: set = set()
    for op in reversed(list(model.block.ops)):  # roots first: a group grows towards its inputs
        if op not in exprs or op in done:
            continue
        try:
            group = _Group(model, op, exprs)
        except ValueError:
            continue
        if len(group.ops) < 2:
            continue
        done.update(group.ops)
        fused = make_op("Elementwise", group.leaves, [op.results[0].type], {"expr": format_expr(group.expr)},
                        node_name=node_name(op), domain="kaiyuan")
        place(model, fused, op)
        note("Elementwise", fused, sorted(group.ops, key=_order(model)))
    return model


def _order(model: GraphModel):
    index = {op: i for i, op in enumerate(model.block.ops)}
    return lambda op: index.get(op, 0)
