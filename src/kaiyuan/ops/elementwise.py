"""Element-wise operators: one engine that runs an expression DAG as one generated kernel, and
the ONNX element-wise operators defined on it.

    result_dtype(expr, in_dtypes) -> np.dtype
    run_expr(expr, inputs, out) -> None

`expr` is a nested tuple: ("in", i), ("const", value, dtype), (fn, arg, ...); ew_expr's docstring
is the table of functions and their dtype rules. `inputs` (numpy arrays or ky.Tensors, any
strides) broadcast numpy-style to out's shape; the result is written into `out`. The graph
engine's fusion pass builds one expression from a chain of element-wise nodes
(`expression(op_type, opset, dtypes, attrs)` gives a node's own) and runs it with `run_expr`.

Modules
    ew_expr        the function table, dtype rules, the code each function becomes
    ew_kernel      the engine: operand addressing, kernel generation, loading, launch
    ew_lib         @jit helpers the generated kernels call (integer division, atan, round...)
    ew_defs        OpDef construction from an expression builder
    ew_onnx_math   Add ... Mean: arithmetic, math, activations, Clip, variadic Min/Max/Sum/Mean
    ew_onnx_logic  comparisons, logic, bitwise, Where, IsNaN/IsInf, Cast/CastLike, Identity
"""

from __future__ import annotations

from . import ew_onnx_logic, ew_onnx_math  # noqa: F401  (importing registers the OpDefs)
from .ew_defs import expression
from .ew_expr import TABLE
from .ew_kernel import result_dtype, run_expr

__all__ = ["result_dtype", "run_expr", "expression", "TABLE"]
