"""Dot operands read in place: a `ky.load` consumed only by a `ky.dot` skips its tile copy.

In a K loop (`a = kl.load(...); acc = kl.dot(a, b, acc)`) copying each loaded tile into a local
array cost 20-30% of a matmul and more of a convolution. When the load's address is affine in the
tile indices, the micro-kernel (dot.py) can read the operand where it lies: A element (i, k) at
p + i*lda + k*acs (any strides: A is read one element at a time), B row k at p + k*ldb, or
through a table of row offsets when the rows are not evenly spaced (conv2d's (c, kh, kw) rows);
B's columns must be contiguous (vector loads). The mask must be all true, which is checked at
run time (cheaply: the mask is built from comparisons of ranges with bounds, so the check
follows its `&`/`|`/broadcast structure and loops over 1-D pieces); edge tiles, or a run-time
column stride other than 1, take the copy as before.

The fusion plan (fusion.py) keeps such a load out of the element-wise groups; `emit_dot` asks
`operand` for the pointer and strides, which emits the check and the fallback copy.

Affinity is proven on the IR, per tile dim: 'c' (the value does not change along the dim), 'a'
(it changes by the same amount between neighbours everywhere: ranges, splats, views, + - of
such values, * by a uniform value), 'x' (anything else). 32-bit index arithmetic is taken not to
wrap, as the emitter's 64-bit address rebuilding (Emitter.index64) already does.
"""

from __future__ import annotations

import math

from xdsl.ir import Operation, SSAValue

from ...ir.ky import shape_of
from ...compiler.cfamily.ctype import compute_type, ctype
from ...compiler.cfamily.fusion import DotOperands, is_splat
from .dot import KINDS

WRITES = {"ky.store", "ky.atomic_rmw", "ky.atomic_cas"}
_LINEAR = {"arith.addi", "arith.subi", "ky.addptr"}


def affinity(v: SSAValue, memo: dict | None = None) -> tuple[str, ...]:
    """Per-dim 'c' / 'a' / 'x' of tile value `v` (see the module doc)."""
    memo = {} if memo is None else memo
    if v not in memo:
        memo[v] = _affinity(v, memo)
    return memo[v]


def _affinity(v: SSAValue, memo: dict) -> tuple[str, ...]:
    shape = shape_of(v.type)
    op = v.owner
    if not isinstance(op, Operation):
        return ("x",) * len(shape)                       # a block argument: unknown
    name = op.name
    sub = lambda x: affinity(x, memo)                    # noqa: E731
    if name == "ky.make_range":
        return ("a",)
    if name == "ky.splat":
        return ("c",) * len(shape)
    if name == "ky.broadcast":
        src = shape_of(op.src.type)
        return tuple("c" if s == 1 else d for s, d in zip(src, sub(op.src)))
    if name == "ky.expand_dims":
        a, src = op.axis.value.data, sub(op.src)
        return src[:a] + ("c",) + src[a:]
    if name == "ky.trans":
        src = sub(op.src)
        return tuple(src[o] for o in op.order.get_values())
    if name in _LINEAR or name == "arith.extsi":
        dims = [sub(o) for o in op.operands]
        return tuple("c" if all(d[i] == "c" for d in dims) else "a" if all(d[i] in "ca" for d in dims) else "x"
                     for i in range(len(shape)))
    if name == "arith.muli":
        x, y = sub(op.lhs), sub(op.rhs)
        if all(d == "c" for d in x):
            return y
        if all(d == "c" for d in y):
            return x
    if op.dialect_name() in ("arith", "math"):
        # a lane-wise function is constant along a dim where all its operands are
        dims = [sub(o) for o in op.operands if shape_of(o.type)]
        return tuple("c" if all(d[i] == "c" for d in dims) else "x" for i in range(len(shape)))
    return ("x",) * len(shape)


def zero_acc(v: SSAValue) -> bool:
    """`v` is a splat of +0 used only as a micro-kernel dot's accumulator (`kl.dot(a, b)`): the
    kernel starts from zero registers instead of reading a zero-filled tile."""
    if not is_splat(v) or not shape_of(v.type):
        return False
    c = v.owner.src.owner
    if not isinstance(c, Operation) or c.name != "arith.constant" or not hasattr(c.value, "value"):
        return False
    x = c.value.value.data
    if x != 0 or math.copysign(1.0, float(x)) < 0:
        return False
    uses = list(v.uses)
    if len(uses) != 1 or uses[0].operation.name != "ky.dot" or uses[0].index != 2:
        return False
    ct = compute_type(v.type)
    return ct in KINDS and ctype(v.type) == ct


def _ok(dims, shape, need) -> bool:
    return all(n == 1 or d in need for d, n in zip(dims, shape))


def direct_role(load: Operation) -> tuple[Operation, str, bool] | None:
    """(dot, "a" or "b", B needs a row table) when the dot may read this load's tile in place."""
    if load.name != "ky.load" or len(shape_of(load.result.type)) != 2:
        return None
    uses = list(load.result.uses)
    if len(uses) != 1 or uses[0].operation.name != "ky.dot" or uses[0].index > 1:
        return None
    dot = uses[0].operation
    block = load.parent_block()
    if dot.parent_block() is not block:
        return None
    ct = compute_type(dot.result.type)
    if ct not in KINDS or ctype(load.result.type) != ct:
        return None                                   # converted operands are copies anyway
    op = load.next_op
    while op is not None and op is not dot:           # nothing may write memory in between
        if any(o.name in WRITES for o in op.walk()):
            return None
        op = op.next_op
    shape, dims = shape_of(load.result.type), affinity(load.ptr)
    if uses[0].index == 0:
        return (dot, "a", False) if _ok(dims, shape, "ca") else None
    if not _ok(dims[1:], shape[1:], "ca"):
        return None
    return dot, "b", not _ok(dims[:1], shape[:1], "ca")


def transposed_a(v: SSAValue) -> bool:
    """`v` is `kl.trans(x)` used only as a micro-kernel dot's A operand: the dot reads x's array
    with swapped strides (A element (i, k) = x[k, i]) instead of a transposed copy."""
    op = v.owner
    if not isinstance(op, Operation) or op.name != "ky.trans" or list(op.order.get_values()) != [1, 0]:
        return False
    uses = list(v.uses)
    if len(uses) != 1 or uses[0].operation.name != "ky.dot" or uses[0].index != 0:
        return False
    ct = compute_type(uses[0].operation.result.type)
    return ct in KINDS and ctype(v.type) == ct


# ------------------------------------------------------------------------------------ emission


def all_true(em, v: SSAValue) -> str:
    """C condition that holds only if every lane of the i1 tile `v` is true (emits the loops it
    needs first). Follows cheap `&`, `|` and views down to 1-D pieces; anything else is looped."""
    if not shape_of(v.type):
        return em.sname(v)
    op = v.owner
    if isinstance(op, Operation) and v not in em.plan.arrays and v not in em.alias:
        if op.name == "ky.splat":
            return em.sname(op.src)
        if op.name in ("ky.broadcast", "ky.expand_dims", "ky.reshape", "ky.trans"):
            return all_true(em, op.src)
        if op.name in ("arith.andi", "arith.ori"):
            sym = "&&" if op.name == "arith.andi" else "||"
            return f"({all_true(em, op.lhs)} {sym} {all_true(em, op.rhs)})"
    shape = shape_of(v.type)
    ok = em.fresh("ok")
    em.line(f"int {ok} = 1;")
    idx = em.open_loops(shape, clauses=f"reduction(&:{ok})")
    em.line(f"{ok} &= {em.ref(v, idx)};")
    em.close_loops(shape)
    return ok


def operand(em, load: Operation, role: str, table: bool) -> tuple[str, str, str]:
    """(pointer, row stride or row-offset table, column stride) of a dot operand read in place
    when its mask is all true, else from the copy into its tile array (emitted here)."""
    from ...compiler.cfamily.fusion import Group

    (rows, cols), ptr = shape_of(load.result.type), load.ptr
    t = ctype(load.result.type)
    p, ld, cs = em.fresh("dp"), em.fresh("dld"), em.fresh("dcs")
    at = lambda i, j: em.ref(ptr, (i, j))  # noqa: E731 - the address of lane (i, j)
    em.line(f"const {t} *{p}; int64_t {cs};" if table else f"const {t} *{p}; int64_t {ld}, {cs};")
    cond = all_true(em, load.mask) if load.mask is not None else "1"
    base = at("0", "0")
    col = f"({at('0', '1')} - {base})" if cols > 1 else "0"
    if role == "b" and cols > 1:
        cond = f"{cond} && {col} == 1"
    em.line(f"if ({cond}) {{")
    em.line(f"    {p} = {base};")
    em.line(f"    {cs} = {col};")
    if table:
        tab = em.fresh("drow")
        em.decls[tab] = ("int64_t", rows)
        em.line(f"    for (int i0 = 0; i0 < {rows}; i0++) {tab}[i0] = {at('i0', '0')} - {p};")
    else:
        em.line(f"    {ld} = {at('1', '0') + ' - ' + p if rows > 1 else '0'};")
    em.line("} else {")
    em.depth += 1
    em.emit_group(Group(shape_of(load.result.type), [load]))
    em.line(f"{p} = {em.aname(load.result)};")
    em.line(f"{cs} = 1;")
    if table:
        em.line(f"for (int i0 = 0; i0 < {rows}; i0++) {tab}[i0] = (int64_t)i0 * {cols};")
    else:
        em.line(f"{ld} = {cols};")
    em.depth -= 1
    em.line("}")
    return p, (tab if table else ld), cs



class DirectOperands(DotOperands):
    """The fusion plan's hooks (cfamily/fusion.py) for the dots of this file."""

    def direct_role(self, load_op):
        return direct_role(load_op)

    def zero_acc(self, v) -> bool:
        return zero_acc(v)

    def transposed_a(self, v) -> bool:
        return transposed_a(v)

    def fills_loop_inits(self) -> bool:
        return True   # emit_scf._fill
