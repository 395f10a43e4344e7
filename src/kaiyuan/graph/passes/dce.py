"""Dead-code elimination: remove ops whose results nobody uses.

What: walking backwards, a kyg op none of whose results is used (by another op or by the
`func.return` of the graph outputs) is erased, then the weights no `kyg.weight` names any more
are dropped from the model. Graph inputs and outputs are never removed, even when unused.

Why: folding, CSE and simplification leave values behind (the weight a folded Transpose read,
the inner Reshape of a merged pair, unused optional outputs); the planner should neither run nor
allocate them, and a compiled model should not carry weights nobody reads.
"""

from __future__ import annotations

from ..model import GraphModel
from ..rewrite import erase, prune_weights


def dce(model: GraphModel) -> GraphModel:
    """Erase unused kyg ops and unused weights (see the module docstring)."""
    model = model.copy()
    for op in reversed(list(model.block.ops)):
        if op.name.startswith("kyg.") and not any(r.uses for r in op.results):
            erase(op)
    prune_weights(model)
    return model
