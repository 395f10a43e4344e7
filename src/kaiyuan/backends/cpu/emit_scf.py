"""scf.for / scf.if / scf.while as C for / if / while.

Carried values get their own C storage declared before the construct (scalars: locals; tiles:
arrays); the op's results are aliases of that storage. `scf.yield` copies into it through
`Emitter.assign`, which reads every source before writing any target, so `scf.yield %b, %a`
(a swap of iter_args) is correct. A loop-carried tile that the body rewrites lane by lane (attention's
`acc * alpha` before the dot accumulates into it) is updated in its own storage instead
(`_updated_in_place`), so the yield copies nothing. A loop's initial tile that nothing else
reads (the previous loop's result: the full-step loop and the masked tail loop of a K walk)
lends the loop its storage (`_init_storage`), and a splat (the zeroed accumulator) is filled
straight into it (`_fill`), so entering a loop copies nothing either (a 64x112 conv
accumulator: two 28 KB memcpy per tile).
"""

from __future__ import annotations

from xdsl.ir import BlockArgument, Operation

from . import direct
from ...compiler.cfamily.ctype import ctype
from .emit_tiles import _dot_in_place
from ...compiler.cfamily.fusion import VIEW_OPS, is_splat, is_tile


def _updated_in_place(em, carried, yielded):
    """The element-wise result that may live in the carried tile's own storage, or None.

    `acc = kl.dot(a, b, acc * alpha)` yields a dot that accumulates in place into `acc * alpha`
    (emit_tiles._dot_in_place); when that product is computed in the carried tile's storage the
    yield copies nothing. Allowed when every read of the carried tile is a same-lane read in the
    product's own loop, at or before it (a later read, or a view reading other lanes, would see
    the new value)."""
    t = yielded
    while isinstance(t.owner, Operation) and t.owner.name == "ky.dot" and not direct.zero_acc(t.owner.acc) \
            and _dot_in_place(em, t.owner):
        t = t.owner.acc
    op = t.owner
    if not isinstance(op, Operation) or op.parent_block() is not carried.block or t.type != carried.type:
        return None
    g = em.plan.group_of.get(op)
    if g is None or t not in em.plan.arrays or t in em.alias:
        return None
    pos = g.ops.index(op)
    for use in carried.uses:
        u = use.operation
        if em.plan.group_of.get(u) is not g or u.name in VIEW_OPS or g.ops.index(u) > pos:
            return None
    return t


def _init_storage(em, op, init):
    """The array of `init` when the loop may carry its tile there instead of in a copy, or None:
    `init` is read by this loop alone (one use), and is made by an op of the loop's own block or
    is that block's argument (an enclosing loop's carried tile, whose next value this loop's
    result becomes); a value from outside an enclosing loop must stay intact for that loop's next
    iteration."""
    if not is_tile(init) or not init.has_one_use():
        return None
    if isinstance(init, BlockArgument):
        return em.alias.get(init) if init.block is op.parent_block() else None
    if init.owner.parent_block() is not op.parent_block() or init.owner.name in VIEW_OPS:
        return None
    return em.aname(init)


def _fill(em, name: str, splat) -> None:
    """The loop's storage starts as a splat (a zeroed accumulator): filled in place, where a
    materialised splat would be filled and then copied (fusion.py leaves it unmaterialised)."""
    em.line("#pragma omp simd")
    em.line(f"for (int q = 0; q < {em.decls[name][1]}; q++) {name}[q] = {em.sname(splat.owner.src)};")


def emit_for(em, op) -> None:
    body = op.body.blocks[0]
    iv, iters = body.args[0], list(body.args[1:])
    names, copied = [], []
    for carried, init in zip(iters, op.iter_args):
        name = None if is_splat(init) else _init_storage(em, op, init)
        if name is None:
            name = em.new_vars([carried], "it")[0]
            if is_splat(init):
                _fill(em, name, init)
            else:
                copied.append((name, init))
        names.append(name)
    em.assign([n for n, _ in copied], [v for _, v in copied])
    em.bind(iters, names)
    em.bind(op.res, names)
    for carried, yielded, name in zip(iters, body.last_op.operands, names):
        if is_tile(carried):
            t = _updated_in_place(em, carried, yielded)
            if t is not None:
                em.alias[t] = name
    i = em.sname(iv)
    t = ctype(iv.type)
    em.line(f"for ({t} {i} = {em.sname(op.lb)}; {i} < {em.sname(op.ub)}; {i} += {em.sname(op.step)}) {{")
    em.depth += 1
    em.emit_block(body, lambda y: em.assign(names, list(y.operands)))
    em.depth -= 1
    em.line("}")


def emit_if(em, op) -> None:
    names = em.new_vars(list(op.output), "r")
    em.bind(op.output, names)
    em.line(f"if ({em.sname(op.cond)}) {{")
    for k, region in enumerate((op.true_region, op.false_region)):
        if not region.blocks:
            continue
        if k == 1:
            em.line("} else {")
        em.depth += 1
        em.emit_block(region.blocks[0], lambda y: em.assign(names, list(y.operands)))
        em.depth -= 1
    em.line("}")


def emit_while(em, op) -> None:
    before, after = op.before_region.blocks[0], op.after_region.blocks[0]
    b_names = em.new_vars(list(before.args), "wb")
    em.assign(b_names, list(op.arguments))
    em.bind(before.args, b_names)
    a_names = em.new_vars(list(op.res), "wa")
    em.bind(after.args, a_names)
    em.bind(op.res, a_names)

    def condition(c) -> None:
        em.assign(a_names, list(c.args))
        em.line(f"if (!{em.sname(c.condition)}) break;")

    em.line("while (1) {")
    em.depth += 1
    em.emit_block(before, condition)
    em.emit_block(after, lambda y: em.assign(b_names, list(y.operands)))
    em.depth -= 1
    em.line("}")


SCF_HANDLERS = {"scf.for": emit_for, "scf.if": emit_if, "scf.while": emit_while}
