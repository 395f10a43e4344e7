"""simplify: common-subexpression and dead-code elimination on a `ky` module.

Why: the frontend writes IR the simple way — a loop body may be generated twice while the types
of its carried values settle, Python-level helpers splat the same scalar more than once, and a
`kl.zeros` nobody reads still leaves its constant behind. Backends should not see that noise:
every later stage (and every human reading a dump) works on the smaller module.

Stages: 1. CSE over pure ops (ops with the `Pure` trait: arith, math, and ky's value ops),
region by region; 2. DCE of ops whose results are unused and which have no side effects
(`ky.load` is kept: it may fault on the interp backend, which is its purpose).
"""

from __future__ import annotations

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.transforms.common_subexpression_elimination import CommonSubexpressionElimination
from xdsl.transforms.dead_code_elimination import region_dce


def simplify(module: ModuleOp) -> ModuleOp:
    CommonSubexpressionElimination().apply(Context(), module)
    for op in module.body.block.ops:
        for region in op.regions:
            region_dce(region)
    return module
