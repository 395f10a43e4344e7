"""scf.for / scf.if / scf.while for the SIMT emitter: C for / if / while, run by every lane alike.

Conditions and bounds are scalars, so uniform: every lane takes the same path and barriers in
the bodies are reached by all lanes. Carried values get storage declared before the construct
(scalars: C locals; tiles: local arrays); the op's results alias it. `scf.yield` copies through
`SimtEmitter.assign` (every source read before any target is written, so swaps are right).
"""

from __future__ import annotations


def emit_for(em, op) -> None:
    body = op.body.blocks[0]
    iv, iters = body.args[0], list(body.args[1:])
    names = em.new_vars(iters, "it")
    em.assign(names, list(op.iter_args))
    em.bind(iters, names)
    em.bind(op.res, names)
    i, t = em.sname(iv), em.ctype(iv.type)
    em.line(f"for ({t} {i} = {em.sname(op.lb)}; {i} < {em.sname(op.ub)}; {i} += {em.sname(op.step)}) {{")
    em.depth += 1
    em.hazards.unknown = True              # the previous iteration's accesses
    em.emit_block(body, lambda y: em.assign(names, list(y.operands)))
    em.depth -= 1
    em.line("}")
    em.hazards.unknown = True


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
        em.hazards.unknown = True
        em.emit_block(region.blocks[0], lambda y: em.assign(names, list(y.operands)))
        em.depth -= 1
    em.line("}")
    em.hazards.unknown = True


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
    em.hazards.unknown = True
    em.emit_block(before, condition)
    em.emit_block(after, lambda y: em.assign(b_names, list(y.operands)))
    em.depth -= 1
    em.line("}")
    em.hazards.unknown = True


HANDLERS = {"scf.for": emit_for, "scf.if": emit_if, "scf.while": emit_while}
