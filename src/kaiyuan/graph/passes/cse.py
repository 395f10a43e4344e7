"""Common-subexpression elimination: compute each distinct value once.

What: two ops with the same name, the same operands (the same SSA values, in order), the same
attributes and the same result types compute the same results, so the later one is replaced by
the earlier one. Node names (locations) do not count. This merges duplicate constants and weight
references too (`kyg.Constant` with equal values, `kyg.weight` with the same name). ONNX operators
have no side effects, so this is safe for every kyg op except the random ones (two RandomNormal
nodes are two draws), which are never merged.

Why: exporters repeat work (one Shape per use, the same Constant per layer, the same mask
computation per attention block); merging it shrinks the plan and lets later passes see shared
values.
"""

from __future__ import annotations

from ..dialect import op_type
from ..model import GraphModel
from ..rewrite import replace_results
from .fold import RANDOM_OPS


def cse(model: GraphModel) -> GraphModel:
    """Replace each op that repeats an earlier one (see the module docstring)."""
    model = model.copy()
    seen = {}
    for op in list(model.block.ops):
        if not op.name.startswith("kyg.") or op_type(op)[1] in RANDOM_OPS:
            continue
        key = (op.name, tuple(op.operands), tuple(r.type for r in op.results), tuple(sorted(op.attributes.items())))
        first = seen.setdefault(key, op)
        if first is not op:
            replace_results(op, list(first.results))
    return model
