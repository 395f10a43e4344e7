"""Target-independent graph passes and the default pipeline.

A pass is a function `GraphModel -> GraphModel` that returns a new model (its argument is left
as it was) and whose docstring says what it does and why. `DEFAULT_PASSES` is the ordered list of
named stages that `run_passes` applies; the stage number is its position in the list:

    1. fold      constant folding with onnx's reference evaluator        (fold.py)
    2. simplify  Identity/Cast/Reshape/Transpose elimination and merging (simplify.py)
    3. cse       common-subexpression elimination                        (cse.py)
    4. dce       dead-code elimination, unused weights dropped            (dce.py)

Shape and dtype inference is not a stage: it needs the input shapes, so it is
`kaiyuan.graph.infer.specialise(model, shapes)`, run before the pipeline (it folds as it infers).
Every pass also works on a model that is not specialised, doing what the known types allow.
"""

from __future__ import annotations

from typing import Callable

from ..model import GraphModel
from .cse import cse
from .dce import dce
from .fold import fold_constants
from .simplify import simplify

Pass = Callable[[GraphModel], GraphModel]

DEFAULT_PASSES: list[tuple[str, Pass]] = [
    ("fold", fold_constants),
    ("simplify", simplify),
    ("cse", cse),
    ("dce", dce),
]


def run_passes(model: GraphModel, passes: list | None = None, dump: list | None = None) -> GraphModel:
    """Apply `passes` (default DEFAULT_PASSES: (name, pass) pairs, or bare pass functions) in order;
    after each, append (pass name, IR text) to `dump` when one is given."""
    for entry in DEFAULT_PASSES if passes is None else passes:
        name, fn = entry if isinstance(entry, tuple) else (entry.__name__, entry)
        model = fn(model)
        if dump is not None:
            dump.append((name, model.text()))
    return model


__all__ = ["DEFAULT_PASSES", "Pass", "cse", "dce", "fold_constants", "run_passes", "simplify"]
