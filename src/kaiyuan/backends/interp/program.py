"""InterpProgram: a loaded kernel; `launch` binds arguments and runs every program of the grid.

Programs run one after another, x fastest, then y, then z. Numpy's overflow/invalid/divide
warnings are silenced for the launch: integer wraparound and IEEE inf/nan are the IR's meaning.
"""

from __future__ import annotations

import numpy as np

from ...runtime.backend import PointerArg, Program, ScalarArg
from ...runtime.errors import ArgumentError, LaunchError, UnsupportedError
from .lowering import Lowering, State
from .memory import Memory, Ptr
from .irtypes import is_ptr, np_dtype, scalar


def _kernel(module):
    funcs = [op for op in module.body.block.ops if op.name == "func.func"]
    if len(funcs) != 1:
        raise UnsupportedError(f"a ky module holds exactly one func.func, this one has {len(funcs)}")
    return funcs[0]


class InterpProgram(Program):
    def __init__(self, module, meta: dict | None = None):
        func = _kernel(module)
        self.name = func.sym_name.data
        self.meta = meta or {}
        self.state = State()
        block = func.body.block
        cx = Lowering(self.state)
        self.params = [(cx.slot(a), a.type, a.name_hint or f"arg{i}") for i, a in enumerate(block.args)]
        self.body = cx.block(block)
        self.nslots = cx.nslots

    # ------------------------------------------------------------------------------- arguments

    def _bind(self, args) -> list:
        if len(args) != len(self.params):
            raise ArgumentError(f"kernel {self.name} takes {len(self.params)} arguments, got {len(args)}")
        memories: dict[int, Memory] = {}
        values = []
        for arg, (_, t, name) in zip(args, self.params):
            if is_ptr(t):
                if not isinstance(arg, PointerArg):
                    raise ArgumentError(f"argument '{name}' of {self.name} is a pointer ({t}), got {arg!r}")
                if arg.buffer.freed or arg.buffer.handle is None:
                    raise ArgumentError(f"argument '{name}' of {self.name} uses a freed buffer")
                handle = arg.buffer.handle
                mem = memories.get(id(handle)) or memories.setdefault(id(handle), Memory(handle))
                dt = np_dtype(t)
                aligned = (mem.addr + arg.offset) % dt.itemsize == 0
                values.append(Ptr(mem, dt, np.int64(arg.offset), int(arg.offset), aligned, name))
            else:
                if not isinstance(arg, ScalarArg):
                    raise ArgumentError(f"argument '{name}' of {self.name} is a scalar ({t}), got {arg!r}")
                values.append(scalar(arg.value, np_dtype(t)))
        return values

    # ---------------------------------------------------------------------------------- launch

    def launch(self, grid, args) -> None:
        grid = tuple(int(g) for g in grid)
        if len(grid) != 3 or min(grid) < 1:
            raise LaunchError(f"grid must be three positive sizes (x, y, z), got {grid}")
        env = [None] * self.nslots
        for (slot, _, _), v in zip(self.params, self._bind(args)):
            env[slot] = v
        state, steps = self.state, self.body.steps
        state.grid = grid
        with np.errstate(all="ignore"):
            for z in range(grid[2]):
                for y in range(grid[1]):
                    for x in range(grid[0]):
                        state.pid = (x, y, z)
                        for step in steps:
                            step(env)
