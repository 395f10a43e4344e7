"""kaiyuan.ops: the operator library, written in kaiyuan.language (DESIGN.md §6).

One operator = one module: its definition (inputs, attributes, dtypes), shape inference, its
kernels with their tiling/tuning, and an eager function with PyTorch's names and arguments.
Each function takes numpy arrays or `ky.Tensor`s (or PyTorch CPU tensors) and returns the same
kind; it runs on the inputs' device (or the default device for host arrays). See docs/ops.md.

    module          functions
    gemm            matmul (and the GEMM kernel with the fused epilogue that linear uses)
    dense           linear, swiglu_linear
    conv            conv2d
    attention       scaled_dot_product_attention
    norms           layer_norm, rms_norm
    activations     softmax, gelu, silu

Operator definitions for the graph engine (`schema.OpDef`, registered on import by
`schema.load_all()`): `elementwise` (+ ew_*: the expression engine, `run_expr`), `reduction`
(+ red_*), `movement` and `indexing` (+ mv_*), `nn` (+ nn_*), `fused` (kaiyuan's own fused
operators). docs/graph.md lists every operator.
"""

from ._common import set_autotune
from .activations import gelu, silu, softmax
from .attention import scaled_dot_product_attention
from .conv import conv2d
from .dense import linear, swiglu_linear
from .gemm import matmul
from .norms import layer_norm, rms_norm

__all__ = ["matmul", "linear", "swiglu_linear", "conv2d", "scaled_dot_product_attention", "softmax",
           "layer_norm", "rms_norm", "gelu", "silu", "set_autotune"]
