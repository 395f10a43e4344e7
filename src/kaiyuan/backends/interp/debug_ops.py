"""`ky.print` and `ky.assert`."""

from __future__ import annotations

import sys

import numpy as np

from ...runtime.errors import DeviceAssertError
from .memory import Ptr
from .registry import lowers


def _text(v) -> str:
    if isinstance(v, Ptr):
        return f"<{v.name} + byte offsets {np.asarray(v.off)}>"
    return str(np.asarray(v))


@lowers("ky.print")
def print_op(op, cx):
    prefix = op.prefix.data
    args = [cx.slot(a) for a in op.args]

    def step(env):
        x, y, z = cx.pid()
        parts = [f"pid ({x}, {y}, {z})"] + ([prefix] if prefix else [])
        with np.printoptions(threshold=sys.maxsize):
            parts += [_text(env[a]) for a in args]
        print(" ".join(parts))

    return step


@lowers("ky.assert")
def assert_op(op, cx):
    c, message, loc = cx.slot(op.cond), op.message.data, cx.loc(op)

    def step(env):
        if not np.all(env[c]):
            x, y, z = cx.pid()
            raise DeviceAssertError(f"device assertion failed in program ({x}, {y}, {z}): {message}", loc=loc,
                                    hint="the condition of kl.device_assert was false for some lane")

    return step
