"""`ky.addptr`, `ky.load`, `ky.store`, `ky.atomic_rmw`, `ky.atomic_cas` (checks: memory.py)."""

from __future__ import annotations

import numpy as np

from .arith_ops import in_compute_dtype
from .memory import Access
from .registry import lowers
from .irtypes import np_dtype, unsigned


@lowers("ky.addptr")
def addptr(op, cx):
    p, o, r = cx.slot(op.ptr), cx.slot(op.offset), cx.slot(op.result)
    isz = np_dtype(op.ptr.type).itemsize

    def step(env):
        ptr = env[p]
        env[r] = ptr.with_offsets(ptr.off + np.asarray(env[o]).astype(np.int64) * isz)

    return step


def _optional(cx, operand):
    return None if operand is None else cx.slot(operand)


@lowers("ky.load")
def load(op, cx):
    p, m, d, r = cx.slot(op.ptr), _optional(cx, op.mask), _optional(cx, op.other), cx.slot(op.result)
    access = Access("ky.load", cx.loc(op), cx.pid)

    def step(env):
        env[r] = access.load(env[p], None if m is None else env[m], None if d is None else env[d])[()]

    return step


@lowers("ky.store")
def store(op, cx):
    p, v, m = cx.slot(op.ptr), cx.slot(op.value), _optional(cx, op.mask)
    access = Access("ky.store", cx.loc(op), cx.pid)

    def step(env):
        access.store(env[p], env[v], None if m is None else env[m])

    return step


def _rmw_update(kind: str, dt: np.dtype):
    if kind in ("add", "fadd"):
        return in_compute_dtype(np.add, dt) if dt.kind != "i" else np.add
    if kind in ("max", "min"):
        return np.maximum if kind == "max" else np.minimum
    if kind in ("umax", "umin"):
        u, f = unsigned(dt), (np.maximum if kind == "umax" else np.minimum)
        return lambda a, b: f(a.view(u), b.view(u)).view(dt)
    if kind == "xchg":
        return lambda a, b: b
    return {"and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor}[kind]


@lowers("ky.atomic_rmw")
def atomic_rmw(op, cx):
    p, v, m, r = cx.slot(op.ptr), cx.slot(op.val), _optional(cx, op.mask), cx.slot(op.result)
    f = _rmw_update(op.kind.data, np_dtype(op.val.type))

    def update(old, new, lane):
        return f(old, new)

    access = Access("ky.atomic_rmw", cx.loc(op), cx.pid)

    def step(env):
        env[r] = access.rmw(env[p], env[v], None if m is None else env[m], update)

    return step


@lowers("ky.atomic_cas")
def atomic_cas(op, cx):
    p, c, v, r = cx.slot(op.ptr), cx.slot(op.cmp), cx.slot(op.val), cx.slot(op.result)
    dt = np_dtype(op.val.type)
    bits = np.dtype(f"u{dt.itemsize}")  # compare bit patterns, as hardware CAS does
    access = Access("ky.atomic_cas", cx.loc(op), cx.pid)

    def step(env):
        cmp = np.reshape(np.broadcast_to(env[c], np.shape(env[p].off)), -1)

        def update(old, new, i):
            return new if np.asarray(old).view(bits) == np.asarray(cmp[i]).view(bits) else None

        env[r] = access.rmw(env[p], env[v], None, update)

    return step
