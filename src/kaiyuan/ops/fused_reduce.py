"""kaiyuan.Reduce: an element-wise expression reduced over some axes, in one generated kernel.

The graph engine's `fuse_reduction` rewrites ReduceX(element-wise chain) onto this op, so the
chain's result (as large as the reduction's input) is never written to memory: each program
evaluates the expression on a BLOCK_O x BLOCK_R tile of (kept, reduced) coordinates and folds it
into an accumulator, then one tile reduction finishes BLOCK_O outputs.

Stages of `run_reduce_expr(expr, inputs, reduction, axes, out)`:
  1. type the expression; the result must be a float type (the fused reductions are the float
     ones: sum, mean, max, min, prod, sum of squares, L1, L2, accumulated in fp32, fp64 for fp64);
  2. address every input through its strides broadcast to the expression's shape, split into the
     kept dims and the reduced dims, and merge the dims every input walks as one (`collapse`) on
     each side, so a reduction over the last axis of contiguous inputs is one kept and one reduced
     dim with unit stride (flag "c": the reduced offset is the index itself, a vector load);
  3. find or generate the kernel (kaiyuan.language source, as ew_kernel does) for (expression,
     dtypes, reduction, dims, flags); shapes and strides are run-time arguments;
  4. launch over the flat kept index, BLOCK_O outputs a program.
"""

from __future__ import annotations

import math
import threading

from ..runtime.dtypes import dtype as to_dtype
from ..runtime.errors import ArgumentError, UnsupportedError
from ._common import I32_MAX, Context, broadcast_strides, collapse
from .ew_expr import compute_name, type_of
from .ew_kernel import _Emitter, _load
from .schema import REQUIRED, OpDef, TensorType, register

# reduction -> (MAP applied to each element, COMB of red_kernels: 0 + 1 * 2 max 3 min, identity, FIN)
REDUCTIONS = {
    "ReduceSum": ("", 0, "0.0", ""), "ReduceMean": ("", 0, "0.0", "mean"),
    "ReduceMax": ("", 2, "NEG_INF", ""), "ReduceMin": ("", 3, "INF", ""), "ReduceProd": ("", 1, "1.0", ""),
    "ReduceSumSquare": ("sq", 0, "0.0", ""), "ReduceL1": ("abs", 0, "0.0", ""), "ReduceL2": ("sq", 0, "0.0", "sqrt"),
}
FLOATS = ("fp16", "bf16", "fp32", "fp64")
BLOCK_O, BLOCK_R = 8, 128
GENERATOR_VERSION = 1

_KERNELS: dict = {}
_LOCK = threading.Lock()


def run_reduce_expr(expr, inputs: list, reduction: str, axes, out) -> None:
    """out = reduction over `axes` of expr(inputs broadcast together); `out` is contiguous, of the
    kept dims (with or without the reduced dims as 1s: keepdims only changes its shape)."""
    if reduction not in REDUCTIONS:
        raise UnsupportedError(f"kaiyuan.Reduce: reduction {reduction!r} is not supported",
                               hint=f"use one of {', '.join(REDUCTIONS)}")
    ctx = Context("reduce", list(inputs) + [out])
    ins = [ctx.operand(x, f"input {i}") for i, x in enumerate(inputs)]
    o = ctx.operand(out, "out")
    want = type_of(expr, [x.dtype for x in ins], {})
    if want.name not in FLOATS or want != o.dtype:
        raise ArgumentError(f"kaiyuan.Reduce: the expression gives {want.name}, out is {o.dtype.name}",
                            hint="the fused reductions take float expressions with out of their dtype")
    shape = _broadcast([tuple(x.shape) for x in ins])
    axes = sorted({a % len(shape) for a in axes}) if shape else []
    kept = [d for d in range(len(shape)) if d not in axes]
    O, R = math.prod(shape[d] for d in kept), math.prod(shape[d] for d in axes)
    if math.prod(o.shape) != O:
        raise ArgumentError(f"kaiyuan.Reduce: out has {math.prod(o.shape)} elements, the reduction gives {O}")
    if O == 0:
        return
    full = [broadcast_strides(x, x.ndim, shape) for x in ins]
    kdims, kst = _merge([shape[d] for d in kept], [[s[d] for d in kept] for s in full])
    rdims, rst = _merge([shape[d] for d in axes], [[s[d] for d in axes] for s in full])
    unit = tuple(len(rdims) == 1 and st[0] == 1 for st in rst)
    reach = max(sum(abs(s) * (d - 1) for d, s in zip(kdims + rdims, k + r)) for k, r in zip(kst, rst))
    if max(reach, O, R) > I32_MAX:
        raise UnsupportedError("kaiyuan.Reduce: an input spans more than 2**31 elements",
                               hint="the fused reduction indexes with 32-bit offsets; run it unfused")
    key = (repr(expr), tuple(x.dtype.name for x in ins), reduction, len(kdims), len(rdims), unit)
    kernel = _kernel(key, expr, [x.dtype for x in ins], want)
    args = [o.obj] + [x.obj for x in ins] + [O, R] + list(kdims[1:]) + list(rdims[1:])
    for j in range(len(ins)):
        args += list(kst[j]) + ([] if unit[j] else list(rst[j]))
    kernel[(-(-O // BLOCK_O),)](*args, BLOCK_O=BLOCK_O, BLOCK_R=BLOCK_R)


def _broadcast(shapes: list) -> tuple:
    try:
        import numpy as np

        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ArgumentError(f"kaiyuan.Reduce: input shapes {shapes} do not broadcast together") from None


def _merge(dims: list, strides: list) -> tuple:
    """(dims, per-input strides) with mergeable dims merged; at least one dim (size 1 if none)."""
    if not dims:
        return [1], [[0] for _ in strides]
    merged, sts = collapse(tuple(dims), *[tuple(s) for s in strides])
    return list(merged), [list(s) for s in sts]


def _kernel(key, expr, in_dtypes, want):
    kernel = _KERNELS.get(key)
    if kernel is None:
        with _LOCK:
            kernel = _KERNELS.get(key)
            if kernel is None:
                kernel = _KERNELS[key] = _load(generate(key, expr, in_dtypes, want))
    return kernel


def _coords(body: list, index: str, sizes: str, n: int, prefix: str) -> None:
    """Lines splitting the flat `index` into n coordinates {prefix}0..{prefix}{n-1} (last fastest)."""
    rest = f"{prefix}_rest"  # one name per side: the loop must not re-type a value from outside it
    body.append(f"{rest} = {index}")
    for d in range(n - 1, 0, -1):
        body += [f"{prefix}{d} = {rest} % {sizes}{d}", f"{rest} = {rest} // {sizes}{d}"]
    body.append(f"{prefix}0 = {rest}")


def generate(key, expr, in_dtypes, want) -> str:
    """The kaiyuan.language source of the kernel for `key` (see the module doc)."""
    _, _, reduction, nk, nr, unit = key
    fmap, comb, ident, fin = REDUCTIONS[reduction]
    n = len(in_dtypes)
    params = ["out_ptr"] + [f"x{i}_ptr" for i in range(n)] + ["O", "R"]
    params += [f"kn{d}" for d in range(1, nk)] + [f"rn{d}" for d in range(1, nr)]
    for j in range(n):
        params += [f"ks{j}_{d}" for d in range(nk)] + ([] if unit[j] else [f"rs{j}_{d}" for d in range(nr)])
    acc = "fp64" if want.name == "fp64" else "fp32"
    body = ["oo = kl.program_id(0) * BLOCK_O + kl.arange(0, BLOCK_O)", "omask = oo < O"]
    _coords(body, "oo", "kn", nk, "k")
    for j in range(n):
        body.append(f"ob{j} = " + " + ".join(f"k{d} * ks{j}_{d}" for d in range(nk)))
    body.append(f'acc = kl.full((BLOCK_O, BLOCK_R), {ident}, "{acc}")')
    loop = ["rr = r0 + kl.arange(0, BLOCK_R)", "m = omask[:, None] & (rr < R)[None, :]"]
    if not all(unit):
        _coords(loop, "rr", "rn", nr, "q")
    gen = _Emitter(in_dtypes, loop)
    for j, t in enumerate(in_dtypes):
        off = "rr" if unit[j] else " + ".join(f"q{d} * rs{j}_{d}" for d in range(nr))
        loop.append(f'a{j} = kl.cast(kl.load(x{j}_ptr + ob{j}[:, None] + ({off})[None, :], mask=m, other=0), '
                    f'"{compute_name(t)}")')
    v = gen.value(expr)
    loop.append(f'v_ = kl.cast({v}, "{acc}")')
    if fmap == "sq":
        loop.append("v_ = v_ * v_")
    elif fmap == "abs":
        loop.append("v_ = kl.abs(v_)")
    loop += [f"acc = RK.combined(acc, kl.where(m, v_, {ident}), {comb})"]
    body.append("for r0 in range(0, R, BLOCK_R):")
    body += ["    " + line for line in loop]
    body.append(f"res = RK.tile_reduce(acc, {comb}, 1)")
    if fin == "mean":
        body.append("res = res / R")
    elif fin == "sqrt":
        body.append("res = kl.sqrt(res)")
    body.append("kl.store(out_ptr + oo, res, mask=omask)")
    lines = [f"# Generated by kaiyuan.ops.fused_reduce (version {GENERATOR_VERSION}); do not edit.",
             f"# {want.name} = {reduction} of {key[0]}",
             "import kaiyuan.language as kl",
             "from kaiyuan.compiler import jit",
             "from kaiyuan.ops import ew_lib as L",
             "from kaiyuan.ops import red_kernels as RK",
             "",
             'INF = float("inf")',
             'NEG_INF = float("-inf")']
    lines += [f"K{k} = {lit}" for k, lit in enumerate(gen.consts)]
    dns = [p for p in params if not p.endswith("_ptr")]
    lines += ["", "", f"@jit(do_not_specialize={dns!r})",
              f"def reduce_fused({', '.join(params)}, BLOCK_O: kl.constexpr, BLOCK_R: kl.constexpr):"]
    lines += ["    " + b for b in body]
    lines += ["", "", "KERNEL = reduce_fused"]
    return "\n".join(lines) + "\n"


def result_dtype(expr, in_dtypes):
    return type_of(expr, [to_dtype(d) for d in in_dtypes], {}).np


# ------------------------------------------------------------------------- the operator
def _parsed(attrs):
    from .fused import parse_expr

    try:
        return parse_expr(attrs["expr"])
    except ValueError as e:
        raise ArgumentError(f"kaiyuan.Reduce: {e}", hint="see kaiyuan.ops.fused.format_expr") from None


def _infer(types, attrs, consts):
    expr = _parsed(attrs)
    if attrs["reduction"] not in REDUCTIONS:
        raise UnsupportedError(f"kaiyuan.Reduce: reduction {attrs['reduction']!r} is not supported",
                               hint=f"use one of {', '.join(REDUCTIONS)}")
    dtype = result_dtype(expr, [t.dtype for t in types])
    if to_dtype(dtype).name not in FLOATS:
        raise UnsupportedError(f"kaiyuan.Reduce: the expression gives {dtype}; fused reductions are float only")
    shape = _broadcast([tuple(t.shape) for t in types])
    axes = {int(a) % len(shape) for a in attrs["axes"]} if shape else set()
    keep = int(attrs["keepdims"]) != 0
    return [TensorType(dtype, tuple(1 if d in axes else n for d, n in enumerate(shape) if keep or d not in axes))]


def _run(inputs, attrs, consts, outputs):
    run_reduce_expr(_parsed(attrs), inputs, attrs["reduction"], [int(a) for a in attrs["axes"]], outputs[0])


register(OpDef("Reduce", _infer, _run, domain="kaiyuan", inputs=(1, 2**31 - 1),
               attrs={"expr": REQUIRED, "reduction": REQUIRED, "axes": REQUIRED, "keepdims": 1},
               doc="reduction (ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceSumSquare, "
                   "ReduceL1, ReduceL2) over `axes` of the element-wise expression `expr` of the inputs, "
                   "one generated kernel (the element-wise → reduction fusion)"))
