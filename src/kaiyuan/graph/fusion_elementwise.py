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


# ------------------------------------------------------------------- element-wise → reduction
FUSED_REDUCTIONS = ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceSumSquare",
                    "ReduceL1", "ReduceL2")


def _reduce_axes(model: GraphModel, op: Operation, rank: int) -> list[int] | None:
    """The reduced axes of a Reduce* op (attribute or constant input), None when not static or
    when empty axes mean 'no reduction' (noop_with_empty_axes)."""
    attrs = op_attrs(op)
    if len(op.operands) > 1 and not is_absent(op.operands[1]):
        c = constant_value(model, op.operands[1])
        if c is None:
            return None
        axes = [int(a) for a in np.asarray(c).reshape(-1)]
    else:
        axes = list(attrs.get("axes") or [])
    if not axes:
        return None if attrs.get("noop_with_empty_axes", 0) else list(range(rank))
    return sorted({a % rank for a in axes})


def _producer_expr(model: GraphModel, v: SSAValue, exprs: dict):
    """(expression, leaves, ops) of the element-wise op producing v (a kaiyuan.Elementwise group
    or one ai.onnx element-wise op), when v has no other user; else None."""
    from ..ops.fused import parse_expr

    p = v.owner
    if not isinstance(p, Operation) or len(users(v)) != 1 or any(r is v for r in model.returned()):
        return None
    if op_type(p) == ("kaiyuan", "Elementwise"):
        return parse_expr(op_attrs(p)["expr"]), list(p.operands), [p]
    if p in exprs and not any(is_absent(x) for x in p.operands):
        return exprs[p], list(p.operands), [p]
    return None


def fuse_reduction(model: GraphModel) -> GraphModel:
    """ReduceX(element-wise chain) → kaiyuan.Reduce(leaves) {expr, reduction, axes, keepdims}: the
    chain is evaluated inside the reduction's loop, so its full-size result never reaches memory
    (ReduceMean(Pow(x, 2)) of an RMSNorm, ReduceSum(Mul(h, mask)) of mean pooling). Float
    reductions only; runs after fuse_elementwise, so a chain arrives as one kaiyuan.Elementwise."""
    from ..ops.fused import format_expr

    model = model.copy()
    exprs = {op: e for op in model.block.ops if (e := _expr_of(model, op)) is not None}
    for red in [op for op in model.block.ops if op_type(op)[0] == "" and op_type(op)[1] in FUSED_REDUCTIONS]:
        x = red.operands[0]
        if type_dtype(x.type).name not in ("float16", "bfloat16", "float32", "float64"):
            continue
        found = _producer_expr(model, x, exprs)
        axes = _reduce_axes(model, red, len(type_shape(x.type)))
        if found is None or axes is None:
            continue
        expr, leaves, ops = found
        attrs = {"expr": format_expr(expr), "reduction": op_type(red)[1], "axes": axes,
                 "keepdims": int(op_attrs(red).get("keepdims", 1))}
        fused = make_op("Reduce", leaves, [red.results[0].type], attrs, node_name=node_name(red), domain="kaiyuan")
        place(model, fused, red)
        note("Reduce", fused, ops + [red])
    return model
