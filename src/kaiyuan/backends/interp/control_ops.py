"""`scf.for`, `scf.if`, `scf.while`: regions run as compiled blocks over the same value slots."""

from __future__ import annotations

from ...runtime.errors import DeviceAssertError
from .registry import lowers
from .irtypes import np_dtype


def _assign(env, slots, values):
    for s, v in zip(slots, values):
        env[s] = v


@lowers("scf.for")
def for_op(op, cx):
    lb, ub, st = cx.slot(op.lb), cx.slot(op.ub), cx.slot(op.step)
    inits = [cx.slot(v) for v in op.iter_args]
    res = [cx.slot(v) for v in op.res]
    iv_type = np_dtype(op.lb.type).type
    body = cx.block(op.body.block)
    loc = cx.loc(op)

    def step(env):
        i, hi, s = int(env[lb]), int(env[ub]), int(env[st])
        if s <= 0 and i < hi:
            x, y, z = cx.pid()
            raise DeviceAssertError(f"scf.for: step {s} is not positive in program ({x}, {y}, {z})", loc=loc,
                                    hint="loops need a positive step")
        vals = [env[v] for v in inits]
        while i < hi:
            vals = body.run(env, [iv_type(i), *vals])
            i += s
        _assign(env, res, vals)

    return step


@lowers("scf.if")
def if_op(op, cx):
    c = cx.slot(op.cond)
    res = [cx.slot(v) for v in op.output]
    then = cx.block(op.true_region.block)
    other = cx.block(op.false_region.block) if op.false_region.blocks else None

    def step(env):
        if env[c]:
            _assign(env, res, then.run(env, ()))
        elif other is not None:
            _assign(env, res, other.run(env, ()))

    return step


@lowers("scf.while")
def while_op(op, cx):
    inits = [cx.slot(v) for v in op.arguments]
    res = [cx.slot(v) for v in op.res]
    before = cx.block(op.before_region.block)
    after = cx.block(op.after_region.block)

    def step(env):
        vals = [env[v] for v in inits]
        while True:
            cond, *vals = before.run(env, vals)
            if not cond:
                break
            vals = after.run(env, vals)
        _assign(env, res, vals)

    return step
