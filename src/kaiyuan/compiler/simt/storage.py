"""Where the SIMT emitter keeps each materialised tile: a lane-private array or local memory.

A tile value that the fusion plan materialises (cfamily/fusion.py) is written by the lane loop
of its group: element i by lane i % L, as iteration k = i / L. If every later read of it happens
at the same element from a lane loop over the same shape (an element-wise op of another group
that is not a view, a fused reduction, a tile atomic or assert), the same lane reads it: it can
live in a private array of ceil(N/L) elements indexed by k, in registers, with no barrier.
Anything else (a view that reads other elements, a reduce/scan/dot/print operand, an scf value)
needs local memory. Reads through cheap values (recomputed at each use) are followed to their
own uses.
"""

from __future__ import annotations

from xdsl.dialects.builtin import FloatAttr, IntegerAttr
from xdsl.ir import Operation

from ...ir.ky import shape_of
from ..cfamily.fusion import VIEW_OPS, DotOperands, is_cheap, is_tile

LANE_LOOP_OPS = {"ky.atomic_rmw", "ky.atomic_cas", "ky.assert"}


class SimtOperands(DotOperands):
    """A splat of zero that only accumulates dots is never stored: the dot starts from zero."""

    def zero_acc(self, v) -> bool:
        op = v.owner
        if not (is_tile(v) and isinstance(op, Operation) and op.name == "ky.splat"):
            return False
        c = op.src.owner
        if not (isinstance(c, Operation) and c.name == "arith.constant"):
            return False
        val = c.value
        if not isinstance(val, (FloatAttr, IntegerAttr)) or val.value.data != 0:
            return False
        uses = list(v.uses)
        return bool(uses) and all(u.operation.name == "ky.dot" and u.index == 2 for u in uses)


def _same_lane_uses(v, shape, plan, seen) -> bool:
    for use in v.uses:
        user = use.operation
        if user in seen:
            continue
        seen.add(user)
        g = plan.group_of.get(user)
        if g is not None and g.shape == shape and user.name not in VIEW_OPS and user not in plan.direct:
            for r in user.results:
                if is_tile(r) and is_cheap(r, plan) and not _same_lane_uses(r, shape, plan, seen):
                    return False
            continue
        if user.name in LANE_LOOP_OPS and shape_of(user.operands[0].type) == shape:
            continue
        return False
    return True


def decide_storage(func_op, plan) -> set:
    """The materialised tile values that live in lane-private arrays (the rest: local memory)."""
    private = set()
    for op in func_op.walk():
        g = plan.group_of.get(op)
        if g is None:
            continue
        for r in op.results:
            if r in plan.arrays and is_tile(r) and not is_cheap(r, plan) and \
                    _same_lane_uses(r, g.shape, plan, set()):
                private.add(r)
    return private
