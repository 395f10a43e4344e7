"""`ky.ops.conv2d`: 2-D convolution (cross-correlation), NCHW, as torch.nn.functional.conv2d.

Definition
    conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1)
        input (N, C, H, W) or (C, H, W); weight (OC, C // groups, KH, KW); bias (OC,)
        -> (N, OC, OH, OW), OH = (H + 2*pad_h - dil_h*(KH-1) - 1) // stride_h + 1 (same for W).
        stride/padding/dilation: an int or a pair; padding also "valid" (0) or "same"
        (stride 1 only; when dil*(k-1) is odd torch pads one more on the right/bottom: here
        UnsupportedError).
dtypes
    fp32, fp64, fp16, bf16 (fp32 accumulation; result in the input dtype).
Kernel
    Implicit GEMM: M = N*OH*OW output pixels, N = OC/groups output channels (per group, grid
    axis 1), K = C/groups * KH * KW. Each program owns a BLOCK_M x BLOCK_N output tile; it
    decomposes its pixel indices once, then loops over (kh, kw) and, inside, over input channels
    in BK steps: the A tile (pixels x channels) is gathered from the input at the im2col
    addresses computed on the fly — no im2col buffer exists — with padding as a load mask, and
    the B tile (channels x output channels) is read from the weight in place; `kl.dot` accumulates.
    BK = min(BLOCK_K, C/groups) and BN = min(BLOCK_N, OC/groups) (heuristics), so thin layers
    (RGB input, depthwise) do not compute padding; EVEN_C compiles the channel mask out.
Tuning
    cpu: `@ky.autotune` over three tile shapes keyed on the problem's sizes; interp: one fixed
    small config.
"""

from __future__ import annotations

import kaiyuan.language as kl

from ..compiler import jit
from ..compiler.autotune import Config, autotune, heuristics
from ..runtime.errors import ArgumentError, UnsupportedError
from ..runtime.tensor import Tensor
from ._common import Context, check_dtype, check_offsets, check_same_dtype, launch, pair
from .gemm import acc_code, zeros_acc

DTYPES = ("fp32", "fp64", "fp16", "bf16")


@jit
def conv2d_kernel(x_ptr, w_ptr, bias_ptr, y_ptr, M, Cg, H, W, OCg, OH, OW,
                  sxn, sxc, sxh, sxw, swo, swc, swh, sww, syn, syc, syh, syw, s_bias,
                  stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, KH, KW,
                  HAS_BIAS: kl.constexpr, ACC: kl.constexpr, BLOCK_M: kl.constexpr, BLOCK_N: kl.constexpr,
                  BLOCK_K: kl.constexpr, BN: kl.constexpr, BK: kl.constexpr, EVEN_C: kl.constexpr):
    pid = kl.program_id(0)
    g = kl.program_id(1)
    num_pid_n = kl.cdiv(OCg, BN)
    pid_m = pid // num_pid_n
    pid_n = pid % num_pid_n
    # output pixels of this tile: decomposed once, outside the K loop
    rm = pid_m * BLOCK_M + kl.arange(0, BLOCK_M)
    rmm = rm % M
    ohw = OH * OW
    n_i = rmm // ohw
    p = rmm % ohw
    oh = p // OW
    ow = p % OW
    ih0 = oh * stride_h - pad_h
    iw0 = ow * stride_w - pad_w
    x_base = x_ptr + g * Cg * sxc + n_i * sxn
    # output channels of this tile
    rn = pid_n * BN + kl.arange(0, BN)
    oc = rn % OCg + g * OCg
    w_base = w_ptr + oc[None, :] * swo
    rk = kl.arange(0, BK)
    acc = zeros_acc(BLOCK_M, BN, ACC)
    for kh in range(0, KH):
        ih = ih0 + kh * dil_h
        row_ok = (ih >= 0) & (ih < H)
        for kw in range(0, KW):
            iw = iw0 + kw * dil_w
            valid = (row_ok & (iw >= 0) & (iw < W))[:, None]
            a_ptrs = (x_base + ih * sxh + iw * sxw)[:, None] + rk[None, :] * sxc
            b_ptrs = w_base + rk[:, None] * swc + kh * swh + kw * sww
            for c in range(0, Cg, BK):
                if EVEN_C:
                    a = kl.load(a_ptrs, mask=valid, other=0)
                    b = kl.load(b_ptrs)
                else:
                    a = kl.load(a_ptrs, mask=valid & ((c + rk)[None, :] < Cg), other=0)
                    b = kl.load(b_ptrs, mask=(c + rk)[:, None] < Cg, other=0)
                acc = kl.dot(a, b, acc)
                a_ptrs += BK * sxc
                b_ptrs += BK * swc
    if HAS_BIAS:
        acc = acc + kl.load(bias_ptr + oc * s_bias)[None, :].to(acc.dtype)
    y_ptrs = y_ptr + (n_i * syn + oh * syh + ow * syw)[:, None] + oc[None, :] * syc
    kl.store(y_ptrs, acc, mask=(rm[:, None] < M) & (rn[None, :] < OCg))


conv2d_fixed = heuristics({
    "BK": lambda a: max(1, min(a["BLOCK_K"], a["Cg"])),
    "BN": lambda a: max(1, min(a["BLOCK_N"], a["OCg"])),
    "EVEN_C": lambda a: a["Cg"] % max(1, min(a["BLOCK_K"], a["Cg"])) == 0,
})(conv2d_kernel)
CPU_CONFIGS = [
    Config({"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 64}),
    Config({"BLOCK_M": 128, "BLOCK_N": 64, "BLOCK_K": 32}),
    Config({"BLOCK_M": 64, "BLOCK_N": 128, "BLOCK_K": 32}),
]
INTERP_CONFIG = {"BLOCK_M": 32, "BLOCK_N": 32, "BLOCK_K": 32}
conv2d_tuned = autotune(configs=CPU_CONFIGS, key=["M", "Cg", "OCg", "KH", "KW", "stride_h", "x_ptr"])(conv2d_fixed)


def _padding(padding, kh: int, kw: int, dil: tuple, stride: tuple):
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0
        if padding == "same":
            if stride != (1, 1):
                raise ArgumentError("conv2d: padding='same' needs stride 1 (as in torch)")
            tot = (dil[0] * (kh - 1), dil[1] * (kw - 1))
            if tot[0] % 2 or tot[1] % 2:
                raise UnsupportedError("conv2d: padding='same' with an even effective kernel size needs "
                                       "asymmetric padding", hint="pad the input explicitly, or use an odd kernel")
            return tot[0] // 2, tot[1] // 2
        raise ArgumentError(f"conv2d: padding {padding!r} is not 'valid', 'same', an int or a pair")
    return pair(padding, "padding", "conv2d")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.nn.functional.conv2d on NCHW inputs, as an implicit GEMM (see the module doc)."""
    ctx = Context("conv2d", (input, weight, bias))
    x, w = ctx.operand(input, "input"), ctx.operand(weight, "weight")
    check_dtype("conv2d", x, DTYPES)
    check_dtype("conv2d", w, DTYPES)
    check_same_dtype("conv2d", x, w)
    unbatched = x.ndim == 3
    if unbatched:
        x = x.reshaped((1,) + x.shape, (0,) + x.strides)
    if x.ndim != 4 or w.ndim != 4:
        raise ArgumentError(f"conv2d: input must be (N, C, H, W) or (C, H, W) and weight (OC, C/groups, KH, KW); "
                            f"got {tuple(x.shape)} and {tuple(w.shape)}")
    N, C, H, W = x.shape
    OC, Cg, KH, KW = w.shape
    if not isinstance(groups, int) or groups < 1 or C % groups or OC % groups or Cg != C // groups:
        raise ArgumentError(f"conv2d: input has {C} channels, weight {tuple(w.shape)}, groups={groups}: need "
                            "C % groups == 0, OC % groups == 0 and weight.shape[1] == C // groups")
    st, dil = pair(stride, "stride", "conv2d"), pair(dilation, "dilation", "conv2d")
    if min(st) < 1 or min(dil) < 1:
        raise ArgumentError(f"conv2d: stride {st} and dilation {dil} must be positive")
    pad = _padding(padding, KH, KW, dil, st)
    if min(pad) < 0:
        raise ArgumentError(f"conv2d: negative padding {pad}")
    OH = (H + 2 * pad[0] - dil[0] * (KH - 1) - 1) // st[0] + 1
    OW = (W + 2 * pad[1] - dil[1] * (KW - 1) - 1) // st[1] + 1
    if OH <= 0 or OW <= 0:
        raise ArgumentError(f"conv2d: the (dilated) kernel {KH}x{KW} does not fit the padded input {H}x{W}")
    b = None
    if bias is not None:
        b = ctx.operand(bias, "bias")
        check_dtype("conv2d", b, DTYPES)
        if tuple(b.shape) != (OC,):
            raise ArgumentError(f"conv2d: bias must have shape ({OC},), got {tuple(b.shape)}")
    y = ctx.output((N, OC, OH, OW), x.dtype)
    check_offsets("conv2d", x, w, y)
    OCg, M = OC // groups, N * OH * OW
    if M > 0 and OCg > 0:
        args = (x.obj, w.obj, b.obj if b is not None else y.obj, y.obj, M, Cg, H, W, OCg, OH, OW,
                *x.strides, *w.strides, *y.strides, b.strides[0] if b is not None else 0,
                st[0], st[1], pad[0], pad[1], dil[0], dil[1], KH, KW)
        flags = {"HAS_BIAS": b is not None, "ACC": acc_code(x.dtype.name)}

        def grid(meta):
            return (-(-M // meta["BLOCK_M"]) * -(-OCg // min(meta["BLOCK_N"], OCg)), groups)

        launch(ctx, conv2d_fixed, conv2d_tuned, CPU_CONFIGS, INTERP_CONFIG, grid, args, flags)
    if unbatched:
        t = y.obj
        y.obj = Tensor(t.buffer, (OC, OH, OW), t.dtype, None, t.offset)
    return ctx.result(y)
