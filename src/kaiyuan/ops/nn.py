"""Neural-network operator definitions (ONNX opsets 13-21 and kaiyuan's fused operators).

Importing this module registers every definition (`schema.load_all` does it for the graph engine).
Each family lives in its own module:

    nn_gemm       MatMul, Gemm, kaiyuan.Linear (GEMM with the fused bias/activation/residual epilogue)
    nn_quant      QuantizeLinear, DequantizeLinear
    nn_matmul_integer  MatMulInteger
    nn_conv       Conv (1-D, 2-D), ConvTranspose (1-D, 2-D)
    nn_pool       MaxPool, AveragePool (1-D, 2-D), GlobalAveragePool, GlobalMaxPool
    nn_lrn        LRN
    nn_lppool     LpPool (1-D, 2-D), composed from |x|^p, AveragePool and a power
    nn_einsum     Einsum (contractions that are one batched matmul after transposes)
    nn_attention  kaiyuan.Attention (scaled dot-product attention, fused by the graph engine)
"""

from . import (nn_attention, nn_conv, nn_einsum, nn_gemm, nn_lppool, nn_lrn, nn_matmul_integer,  # noqa: F401
               nn_pool, nn_quant)  # (importing them registers their definitions)
