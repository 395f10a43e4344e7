"""kaiyuan.graph: the graph engine (DESIGN.md §6).

ONNX models are imported into the `kyg` dialect (`import_onnx`), specialised to concrete input
shapes (`specialise`: shape and dtype inference with constant folding), and rewritten by
target-independent passes (`run_passes`: folding, simplification, CSE, DCE). See docs/graph.md.
"""

from .dialect import attrs, make_op, op_type
from .infer import specialise
from .model import GraphModel, ValueInfo
from .onnx_import import import_onnx
from .passes import DEFAULT_PASSES, run_passes

__all__ = ["DEFAULT_PASSES", "GraphModel", "ValueInfo", "attrs", "import_onnx", "make_op", "op_type", "run_passes",
           "specialise"]
