"""ONNX Einsum (opsets 12-21): the contractions that are one batched matmul after transposes.

Supported
    One operand whose letters are all kept (a transpose: 'ij->ji', 'bhld->blhd'): one strided copy.
    Two operands where every letter is either a batch letter (in both operands and the output),
    an M letter (first operand and output), an N letter (second operand and output) or a
    contracted letter (both operands, not the output): 'bij,bjk->bik', 'bhid,bhjd->bhij', 'ij,jk',
    'i,i', 'i,j->ij', 'ij,kj->ik'... Implicit outputs (no '->') and '...' (broadcast as numpy does)
    work. The letters of each group are folded into one GEMM dim through the operand's strides;
    an operand whose strides do not fold is first copied (copy4d_kernel) into the letter order
    (batch, M, K) / (batch, K, N), and an output that does not fold is computed in scratch memory
    and copied. The GEMM is ops.matmul's kernel (fp32 accumulation for fp16/bf16).
Unsupported (UnsupportedError naming the equation)
    three or more operands, a letter repeated within one operand (diagonals, traces), a letter
    summed away that only one operand has ('ij->i', 'ij,jk->k'), integer dtypes.
"""

from __future__ import annotations

import math

import kaiyuan.language as kl

from ..compiler import jit
from ..runtime.dtypes import dtype as to_dtype
from ..runtime.errors import ArgumentError, UnsupportedError
from ._common import Context, Operand, collapse
from .gemm import launch_gemm
from .nn_util import FLOATS, np_names, out_type, require, same_dtype, scratch, shape_of, strides_of, text
from .schema import REQUIRED, OpDef, register

OP = "Einsum"
COPY_BLOCK = 1024


@jit
def copy4d_kernel(x_ptr, y_ptr, D1, D2, D3, sx0, sx1, sx2, sx3, sy0, sy1, sy2, sy3, BLOCK: kl.constexpr):
    # y[i0, i1, i2, i3] = x[i0, i1, i2, i3], both strided; program: (i0, i1, i2) and BLOCK of i3
    r = kl.program_id(0)
    i2 = r % D2
    i1 = (r // D2) % D1
    i0 = r // (D2 * D1)
    i3 = kl.program_id(1) * BLOCK + kl.arange(0, BLOCK)
    m = i3 < D3
    v = kl.load(x_ptr + i0 * sx0 + i1 * sx1 + i2 * sx2 + i3 * sx3, mask=m)
    kl.store(y_ptr + i0 * sy0 + i1 * sy1 + i2 * sy2 + i3 * sy3, v, mask=m)


def strided_copy(x, xst: tuple, y, yst: tuple, shape: tuple) -> None:
    """y[i] = x[i] over `shape`, each read/written through its own strides (in elements)."""
    if 0 in shape:
        return
    dims, (sx, sy) = collapse(shape, xst, yst)
    if len(dims) > 4:
        raise UnsupportedError(f"{OP}: a copy over {len(dims)} non-foldable dims is not supported (at most 4)")
    k = 4 - len(dims)
    dims, sx, sy = (1,) * k + dims, (0,) * k + sx, (0,) * k + sy
    block = min(COPY_BLOCK, 1 << max(0, (dims[3] - 1).bit_length()))
    copy4d_kernel[(dims[0] * dims[1] * dims[2], -(-dims[3] // block))](x, y, dims[1], dims[2], dims[3], *sx, *sy,
                                                                        BLOCK=block)


# ------------------------------------------------------------------------------- the equation


def parse(equation: str, ranks: list[int]) -> tuple[list[str], str]:
    """(input terms, output term), each a string of one character per dim ('...' expanded to
    private characters, right-aligned across operands as numpy broadcasts them)."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ranks):
        raise ArgumentError(f"{OP}: equation {equation!r} has {len(terms)} operands, the node {len(ranks)}")
    ell = max([r - (len(t) - 3) for t, r in zip(terms, ranks) if "..." in t] or [0])
    pool = "".join(chr(0x3B1 + i) for i in range(ell))  # Greek letters: never ONNX subscripts
    out_terms = []
    for t, r in zip(terms, ranks):
        if "..." in t:
            n = r - (len(t) - 3)
            t = t.replace("...", pool[ell - n:])
        if len(t) != r or not all(c.isalpha() for c in t):
            raise ArgumentError(f"{OP}: term {t!r} of {equation!r} does not fit an operand of rank {r}")
        out_terms.append(t)
    if arrow:
        out = rhs.replace("...", pool)
    else:
        once = [c for c in sorted(set("".join(out_terms)) - set(pool)) if "".join(out_terms).count(c) == 1]
        out = pool + "".join(once)
    if len(set(out)) != len(out) or any(c not in "".join(out_terms) for c in out):
        raise ArgumentError(f"{OP}: output {rhs!r} of {equation!r} repeats a letter or names one no input has")
    return out_terms, out


def letter_sizes(terms: list[str], shapes: list[tuple]) -> dict:
    sizes: dict = {}
    for t, s in zip(terms, shapes):
        for c, n in zip(t, s):
            if sizes.get(c, 1) not in (1, n) and n != 1:
                raise ArgumentError(f"{OP}: letter {c!r} has sizes {sizes[c]} and {n}")
            sizes[c] = n if sizes.get(c, 1) == 1 else sizes[c]
    return sizes


def plan(equation: str, shapes: list[tuple]):
    """(terms, output term, letter sizes, (batch, M, N, K) letter lists or None for a transpose);
    UnsupportedError for what is not one batched matmul after transposes."""
    terms, out = parse(equation, [len(s) for s in shapes])
    sizes = letter_sizes(terms, shapes)
    for t in terms:
        if len(set(t)) != len(t):
            raise UnsupportedError(f"{OP}: {equation!r} repeats a letter within an operand (a diagonal)",
                                   hint="kaiyuan's Einsum supports transposes and batched matmul contractions")
    if len(terms) > 2:
        raise UnsupportedError(f"{OP}: {equation!r} has {len(terms)} operands; kaiyuan supports 1 or 2",
                               hint="split the Einsum into two-operand steps")
    summed = [c for t in terms for c in t if c not in out and sum(c in u for u in terms) == 1]
    if summed:
        raise UnsupportedError(f"{OP}: {equation!r} sums away {sorted(set(summed))}, which only one operand has",
                               hint="kaiyuan's Einsum supports transposes and batched matmul contractions")
    if len(terms) == 1:
        return terms, out, sizes, None
    a, b = terms
    groups = ([c for c in out if c in a and c in b], [c for c in out if c in a and c not in b],
              [c for c in out if c in b and c not in a], [c for c in a if c in b and c not in out])
    for c in groups[3]:
        if shapes[0][a.index(c)] != shapes[1][b.index(c)]:
            raise ArgumentError(f"{OP}: contracted letter {c!r} has sizes {shapes[0][a.index(c)]} and "
                                f"{shapes[1][b.index(c)]}")
    return terms, out, sizes, groups


# ------------------------------------------------------------------------------- OpDef


def _infer(types, attrs, consts):
    require(OP, types[0].dtype, FLOATS, "input 0")
    same_dtype(OP, list(types), [f"input {i}" for i in range(len(types))])
    _, out, sizes, _ = plan(text(attrs["equation"]), [tuple(t.shape) for t in types])
    return [out_type(types[0].dtype, tuple(sizes[c] for c in out))]


def _fold(x, term: str, groups: list[list[str]]):
    """x's dims named by `term` seen as one dim per group (sizes, strides), or None when a group's
    dims are not one arithmetic progression in memory."""
    shape, st = dict(zip(term, shape_of(x))), dict(zip(term, strides_of(x)))
    sizes, strides = [], []
    for g in groups:
        dims = [(shape[c], st[c]) for c in g if shape[c] != 1]
        for (_, s0), (n1, s1) in zip(dims, dims[1:]):
            if s0 != s1 * n1:
                return None
        sizes.append(math.prod(shape[c] for c in g))
        strides.append(dims[-1][1] if dims else 0)
    return tuple(sizes), tuple(strides)


def _operand(x, term: str, groups: list[list[str]], dt) -> Operand:
    """x as a GEMM operand with one dim per group (a contiguous copy in group order if needed)."""
    folded = _fold(x, term, groups)
    if folded is None:
        order = [c for g in groups for c in g]
        xs, xst = dict(zip(term, shape_of(x))), dict(zip(term, strides_of(x)))
        shape = tuple(xs[c] for c in order)
        y = scratch(x, shape, dt.np)
        strided_copy(x, tuple(xst[c] for c in order), y, strides_of(y), shape)
        x, term = y, "".join(order)
        folded = _fold(x, term, groups)
    return Operand(x, folded[0], folded[1], dt, "operand")


def _run(inputs, attrs, consts, outputs):
    y = outputs[0]
    terms, out, sizes, groups = plan(text(attrs["equation"]), [shape_of(x) for x in inputs])
    x0 = inputs[0]
    if groups is None:  # a transpose: copy in the output's letter order
        xst = dict(zip(terms[0], strides_of(x0)))
        strided_copy(x0, tuple(xst[c] for c in out), y, strides_of(y), shape_of(y))
        return
    batch, Ms, Ns, Ks = groups
    dt = to_dtype(x0.dtype)
    a = _operand(x0, terms[0], [[c] for c in batch] + [Ms, Ks], dt)
    b = _operand(inputs[1], terms[1], [[c] for c in batch] + [Ks, Ns], dt)
    cgroups = [[c] for c in batch] + [Ms, Ns]
    folded = _fold(y, out, cgroups)
    target = y
    if folded is None:  # compute in (batch, M, N) order, then copy into the output's order
        order = "".join(c for g in cgroups for c in g)
        target = scratch(y, tuple(sizes[c] for c in order), dt.np)
        folded = _fold(target, order, cgroups)
    c = Operand(target, folded[0], folded[1], dt, "output")
    bshape = tuple(sizes[ch] for ch in batch)
    M, N, K = (math.prod(sizes[ch] for ch in g) for g in (Ms, Ns, Ks))
    launch_gemm(Context(OP, (x0, inputs[1], y)), a, b, c, bshape, M, N, K)
    if target is not y:
        yst = dict(zip(out, strides_of(y)))
        order = [ch for g in cgroups for ch in g]
        strided_copy(target, strides_of(target), y, tuple(yst[ch] for ch in order), shape_of(target))


register(OpDef(OP, _infer, _run, since=12, inputs=(1, 2), attrs={"equation": REQUIRED}, dtypes=np_names(FLOATS),
               doc="transposes and two-operand contractions that are one batched matmul"))
