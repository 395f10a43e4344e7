"""Fusion: which tile ops share one C loop nest, and which tile values need an array.

Each block is cut into an ordered list of items: a `Group` (consecutive element-wise tile ops of
one shape, emitted as ONE loop nest whose body holds scalar temporaries) or a single `op` (scalar
ops, reductions, dots, scf, atomics, print, assert — emitted on their own).

Rules, in order of the walk over a block:
  1. Pure scalar ops never close a group; they are placed before the open group (they cannot
     depend on it: a tile only becomes a scalar through a reduce, which closes groups).
  2. An element-wise tile op joins the open group when it has the group's shape, unless it is a
     load after a store of the group (memory order), or a view op (broadcast/expand_dims/
     reshape/trans) of a value computed in the group (it reads other lanes).
  3. A 1-D reduce with a single-op combiner over the group's shape joins the group as its last op
     (the loop carries the accumulator) and closes it.
  4. Anything else closes the group and is emitted alone.
  5. Exception (when the emitter passes `DotOperands` hooks; the cpu backend's direct.py): a load
     that only feeds a `ky.dot` operand, with an address affine in the tile indices, joins no
     group: the dot reads it in place when its mask is all true, and emits its copy loop as the
     fallback. Such a load does not close the open group.

A tile value gets an array ("is materialised") when it is used outside its group and cannot be
recomputed there. "Cheap" values are recomputed at each use instead: make_range, splat, views of
cheap or materialised values, and integer/pointer arithmetic over cheap values — so
`x + (pid*B + arange(B))` reaches the loop that loads it as `x[s + i]`, a contiguous vector load,
not a gather from an offsets array. Reductions, scans, dots and scf ops read arrays, so their tile
operands are always materialised (but a zero splat that is only a dot's accumulator: the dot
starts from zero registers; and a transposed view that is only a dot's A operand: the dot reads
its source's array transposed); results of those ops and scf block arguments are arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xdsl.dialects.builtin import TensorType
from xdsl.ir import Block, Operation, SSAValue

from ...ir.ky import shape_of

class DotOperands:
    """Hooks of an emitter whose dots read some operands in place (the cpu backend's direct.py).
    The defaults read nothing in place: every dot operand is materialised."""

    def direct_role(self, load_op):
        """(dot, role, row table) when this load is read in place by its dot, else None."""
        return None

    def zero_acc(self, v) -> bool:
        """True when tile `v` is only a dot's all-zero accumulator (never materialised)."""
        return False

    def transposed_a(self, v) -> bool:
        """True when tile `v` is a transposed view read by a dot from its source's array."""
        return False

    def fills_loop_inits(self) -> bool:
        """True when the emitter fills an scf.for's carried storage from a splat initial value
        itself (the splat then needs no array for that use)."""
        return False


VIEW_OPS = {"ky.broadcast", "ky.expand_dims", "ky.reshape", "ky.trans"}
SOURCE_OPS = {"ky.make_range", "ky.splat"}
CHEAP_INT_OPS = {"arith.addi", "arith.subi", "arith.muli", "arith.andi", "arith.ori", "arith.xori",
                 "arith.shli", "arith.shrsi", "arith.shrui", "arith.maxsi", "arith.minsi", "arith.maxui",
                 "arith.minui", "arith.cmpi", "arith.select", "arith.extsi", "arith.extui", "arith.trunci",
                 "ky.addptr"}
ARRAY_CONSUMERS = {"ky.reduce", "ky.scan", "ky.dot", "ky.print", "scf.yield", "scf.for", "scf.while",
                   "scf.condition", "scf.if"}
SIDE_EFFECT_OPS = {"ky.load", "ky.store", "ky.atomic_rmw", "ky.atomic_cas", "ky.print", "ky.assert"}


def is_tile(v: SSAValue) -> bool:
    return isinstance(v.type, TensorType)


def is_elementwise(op: Operation) -> bool:
    """An op that computes each lane from the same lane of its operands (views: from a mapped lane)."""
    if op.name == "ky.store":
        return is_tile(op.operands[0])
    if op.name in SOURCE_OPS or op.name in VIEW_OPS or op.name in ("ky.addptr", "ky.load"):
        return bool(op.results) and is_tile(op.results[0])
    if op.dialect_name() in ("arith", "math") and len(op.results) == 1:
        return is_tile(op.results[0])
    return False


def is_pure_scalar(op: Operation) -> bool:
    if op.regions or op.name in SIDE_EFFECT_OPS:
        return False
    return bool(op.results) and not any(is_tile(r) for r in op.results) and \
        not any(is_tile(o) for o in op.operands)


def loop_shape(op: Operation) -> tuple[int, ...]:
    return shape_of(op.operands[0].type) if op.name == "ky.store" else shape_of(op.results[0].type)


OMP_REDUCTION = {"arith.addf": "+", "arith.addi": "+", "arith.mulf": "*", "arith.muli": "*", "arith.andi": "&",
                 "arith.ori": "|", "arith.xori": "^", "arith.maxsi": "max", "arith.minsi": "min",
                 "arith.maximumf": "ky_max", "arith.minimumf": "ky_min", "arith.maxnumf": "max",
                 "arith.minnumf": "min"}  # ky_max/ky_min: the prelude's NaN-propagating reductions


def simple_combiner(op) -> str | None:
    """The OpenMP reduction operator when the combiner is one commutative op on (acc, x) of a
    type OpenMP reduces (not f16/bf16/i1)."""
    from .ctype import is_half, width
    from ...ir.ky import element_of

    block = op.combiner.blocks[0]
    ops = list(block.ops)
    if len(op.srcs) != 1 or len(ops) != 2:
        return None
    f, y = ops
    elem = element_of(op.srcs[0].type)
    if set(f.operands) != set(block.args) or list(y.operands) != [f.results[0]] or is_half(elem) or width(elem) == 1:
        return None
    red = OMP_REDUCTION.get(f.name)
    if red and red.startswith("ky_") and width(elem) == 32:
        red += "f"
    return red


def fusible_reduce(op: Operation, group: "Group | None") -> bool:
    """A 1-D reduce with a single-op combiner folds into the open group of its shape: the group's
    loop carries the accumulator (`omp simd reduction`), saving a pass over the tile."""
    return (op.name == "ky.reduce" and group is not None and len(shape_of(op.srcs[0].type)) == 1
            and shape_of(op.srcs[0].type) == group.shape and simple_combiner(op) is not None
            and not any(is_tile(r) for r in op.results))


@dataclass(eq=False)
class Group:
    shape: tuple[int, ...]
    ops: list[Operation] = field(default_factory=list)
    has_store: bool = False

    def accepts(self, op: Operation) -> bool:
        if loop_shape(op) != self.shape or (op.name == "ky.load" and self.has_store):
            return False
        return not (op.name in VIEW_OPS and op.operands[0].owner in self.ops)

    def add(self, op: Operation) -> None:
        self.ops.append(op)
        self.has_store |= op.name == "ky.store"


@dataclass
class Plan:
    items: dict[Block, list] = field(default_factory=dict)   # block -> [Group | Operation]
    group_of: dict[Operation, Group] = field(default_factory=dict)
    arrays: set = field(default_factory=set)                  # materialised tile values
    cheap: dict = field(default_factory=dict)                 # memo: value -> bool
    direct: dict = field(default_factory=dict)                # load -> (dot, role, row table): direct.py


def group_block(block: Block, plan: Plan, hooks: DotOperands) -> None:
    items: list = []
    cur: Group | None = None
    for op in block.ops:
        for region in op.regions:
            for b in region.blocks:
                group_block(b, plan, hooks)
        role = hooks.direct_role(op) if op.name == "ky.load" else None
        if role is not None:
            # read in place by its dot (direct.py): emitted there, its copy only as the fallback
            plan.direct[op] = role
            plan.group_of[op] = Group(loop_shape(op), [op])
        elif is_elementwise(op):
            if cur is None or not cur.accepts(op):
                cur = Group(loop_shape(op))
                items.append(cur)
            cur.add(op)
            plan.group_of[op] = cur
        elif fusible_reduce(op, cur):
            cur.add(op)
            plan.group_of[op] = cur
            cur = None
        elif is_pure_scalar(op):
            items.insert(len(items) - 1 if cur is not None else len(items), op)
        else:
            cur = None
            items.append(op)
    plan.items[block] = items


def is_cheap(v: SSAValue, plan: Plan) -> bool:
    if v in plan.cheap:
        return plan.cheap[v]
    op = v.owner
    ok = False
    if is_tile(v) and isinstance(op, Operation) and op in plan.group_of:
        if op.name in SOURCE_OPS or op.name in VIEW_OPS:
            ok = True
        elif op.name in CHEAP_INT_OPS:
            ok = all(is_cheap(o, plan) for o in op.operands if is_tile(o))
    plan.cheap[v] = ok
    return ok


def is_splat(v) -> bool:
    """`v` is a tile splat of one scalar (ky.splat)."""
    return is_tile(v) and isinstance(v.owner, Operation) and v.owner.name == "ky.splat"


def materialise(func_op: Operation, plan: Plan, hooks: DotOperands) -> None:
    for op in func_op.walk():
        for r in op.results:
            if not is_tile(r):
                continue
            g = plan.group_of.get(op)
            if g is None:
                plan.arrays.add(r)      # produced by a reduce/dot/scf/atomic: always an array
                continue
            if hooks.zero_acc(r):
                continue                # the dot starts from zero registers (direct.py)
            if hooks.transposed_a(r):
                plan.arrays.add(op.operands[0])   # the dot reads the source transposed (direct.py)
                continue
            for use in r.uses:
                user = use.operation
                if plan.group_of.get(user) is g or (user.name == "scf.for" and is_splat(r)
                                                    and hooks.fills_loop_inits()):
                    continue
                if user.name in ARRAY_CONSUMERS or not is_cheap(r, plan):
                    plan.arrays.add(r)
                    break
        for region in op.regions:
            for b in region.blocks:
                plan.arrays.update(a for a in b.args if is_tile(a))


def plan_function(func_op: Operation, hooks: DotOperands | None = None) -> Plan:
    hooks = hooks or DotOperands()
    plan = Plan()
    for b in func_op.regions[0].blocks:
        group_block(b, plan, hooks)
    materialise(func_op, plan, hooks)
    return plan
