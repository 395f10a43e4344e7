"""Lowering a func body to closures, once per loaded program.

Every SSA value gets a slot index into `env`, a plain list that lives for one launch. Each op
becomes a step `step(env)` built by its builder in the dispatch table (registry.py); a block
becomes a `CompiledBlock`: its argument slots, its steps, and the slots its terminator passes on
(scf.yield / ky.yield / scf.condition operands). Region-holding ops (scf.*, ky.reduce/scan) run
their blocks through `CompiledBlock.run`.
"""

from __future__ import annotations

from ...ir.text import op_location
from ...runtime.errors import UnsupportedError
from . import arith_ops, control_ops, debug_ops, math_ops, memory_ops, tile_ops  # noqa: F401  (register builders)
from .registry import BUILDERS

TERMINATORS = ("func.return", "scf.yield", "ky.yield", "scf.condition")


class State:
    """What a running program can ask about itself: its id and the grid."""

    def __init__(self) -> None:
        self.pid = (0, 0, 0)
        self.grid = (1, 1, 1)


class CompiledBlock:
    def __init__(self, args: list[int], steps: list, results: list[int]):
        self.args, self.steps, self.results = args, steps, results

    def run(self, env: list, inputs) -> list:
        for s, v in zip(self.args, inputs):
            env[s] = v
        for step in self.steps:
            step(env)
        return [env[r] for r in self.results]


class Lowering:
    def __init__(self, state: State):
        self.state = state
        self.slots: dict = {}

    def slot(self, value) -> int:
        s = self.slots.get(value)
        if s is None:
            s = self.slots[value] = len(self.slots)
        return s

    @property
    def nslots(self) -> int:
        return len(self.slots)

    def loc(self, op) -> str | None:
        return op_location(op)

    def pid(self):
        return self.state.pid

    def block(self, block) -> CompiledBlock:
        args = [self.slot(a) for a in block.args]
        steps, results = [], []
        for op in block.ops:
            if op.name in TERMINATORS and op is block.last_op:
                results = [self.slot(v) for v in op.operands]
                continue
            builder = BUILDERS.get(op.name)
            if builder is None:
                raise UnsupportedError(f"the interp backend does not implement {op.name}", loc=self.loc(op),
                                       hint="see the list of ops in docs/ir.md")
            steps.append(builder(op, self))
        return CompiledBlock(args, steps, results)
