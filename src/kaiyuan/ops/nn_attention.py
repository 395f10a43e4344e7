"""kaiyuan.Attention: scaled dot-product attention as one operator (domain "kaiyuan").

The graph engine's attention fusion replaces the MatMul -> (Mul|Div) -> (Add mask) -> Softmax ->
MatMul chain of a transformer's attention with this operator, so the Lq x Lk score matrix never
exists in memory (`ops.scaled_dot_product_attention`, flash style).

    inputs  q (B, H, Lq, D), k (B, H, Lk, D), v (B, H, Lk, Dv); B and H may be 1 in any of them
            and broadcast (as torch's sdpa). mask: optional, broadcastable to (B, H, Lq, Lk):
            a float mask is added to the scaled scores (0 = takes part, -inf/-1e4... = masked out),
            a bool mask keeps the keys where it is True (torch's convention).
    attrs   scale (float; 0 means 1/sqrt(D)), causal (int: 1 = query i sees keys j <= i, top-left
            aligned when Lq != Lk; combined with the mask when both are given)
    output  softmax(q @ k^T * scale + mask) @ v, (B, H, Lq, Dv), q's dtype
dtypes: fp32, fp16, bf16 (fp32 statistics and accumulation), fp64.
"""

from __future__ import annotations

import numpy as np

from ..runtime.errors import ArgumentError
from .attention import scaled_dot_product_attention
from .nn_util import FLOATS, broadcasts_to, np_names, out_type, require, same_dtype
from .schema import OpDef, register

OP = "kaiyuan.Attention"


def _bcast(what: str, *sizes: int) -> int:
    out = 1
    for n in sizes:
        if n != 1:
            if out not in (1, n):
                raise ArgumentError(f"{OP}: {what} sizes {sizes} do not broadcast")
            out = n
    return out


def _infer(types, attrs, consts):
    q, k, v = types[:3]
    mask = types[3] if len(types) > 3 else None
    require(OP, q.dtype, FLOATS, "q")
    same_dtype(OP, [q, k, v], ["q", "k", "v"])
    if not (len(q.shape) == len(k.shape) == len(v.shape) == 4):
        raise ArgumentError(f"{OP}: q, k, v must be 4-D (B, H, L, D); got {q.shape}, {k.shape}, {v.shape}")
    (Bq, Hq, Lq, D), (Bk, Hk, Lk, Dk), (Bv, Hv, Lv, Dv) = q.shape, k.shape, v.shape
    if Dk != D or Lv != Lk or (Bk, Hk) != (Bv, Hv):
        raise ArgumentError(f"{OP}: q {q.shape}, k {k.shape}, v {v.shape} do not fit: need k (B, H, Lk, D) and "
                            "v (B, H, Lk, Dv)")
    B, H = _bcast("batch", Bq, Bk), _bcast("head", Hq, Hk)
    if mask is not None:
        if mask.dtype != np.bool_:
            require(OP, mask.dtype, FLOATS, "mask")
        if not broadcasts_to(mask.shape, (B, H, Lq, Lk)):
            raise ArgumentError(f"{OP}: mask {tuple(mask.shape)} does not broadcast to {(B, H, Lq, Lk)}")
    return [out_type(q.dtype, (B, H, Lq, Dv))]


def _run(inputs, attrs, consts, outputs):
    q, k, v = inputs[:3]
    mask = inputs[3] if len(inputs) > 3 else None
    scale = float(attrs["scale"])
    scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=bool(attrs["causal"]),
                                 scale=scale if scale != 0.0 else None, out=outputs[0])


register(OpDef("Attention", _infer, _run, domain="kaiyuan", since=1, inputs=(3, 4), dtypes=np_names(FLOATS),
               attrs={"scale": 0.0, "causal": 0},
               doc="softmax(q @ k^T * scale + mask) @ v without the score matrix; scale 0 = 1/sqrt(D)"))
