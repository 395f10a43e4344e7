"""How the reduction kernels see a tensor: kept dims x reduced dims, each merged through strides.

Every kernel of the reduction family (Reduce*, ArgMax, CumSum, Softmax, the normalisations) walks
its input as

    kept dims     (O0, O1, I)   one program per (o0, o1) and per block of I (I is the tile's
                                column dim: the kept dim with the smallest input stride)
    reduced dims  (Q0, Q1, Q2)  walked by two scalar loops (Q0, Q1) around a tile loop over Q2
                                (the reduced dim with the smallest input stride)

Each dim carries its input stride and its output stride (0 in the output of a reduction), in
elements, so permuted, strided and negative-stride inputs are read in place. Neighbouring dims
that both tensors walk as one are merged first (NCHW reduced over H and W is one reduced dim of
H*W). A layout that still needs more than three kept or three reduced dims is read from a
contiguous copy, after which every input of rank <= 6 fits; higher ranks fit when their axes
merge, else UnsupportedError.

Tiles: a program holds a BLOCK_R x BLOCK_I tile. When the reduced dim is the contiguous one
("row" case: softmax over the last axis) the tile is a few rows (BLOCK_I) by a chunk of each row
(BLOCK_R); otherwise ("column" case: a reduction over a leading axis) it is a few reduced rows by
a block of contiguous kept elements. Block sizes come from a short list, so that few kernels are
compiled.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..runtime.errors import UnsupportedError
from ._common import Operand, check_offsets, contiguous

MAX_DIMS = 3
# Tile shapes. The cpu backend keeps a loop-carried tile in a stack array that it copies every
# iteration, so accumulators stay small (64-128 elements): measured on AVX-512, a 16 x 4 row tile
# reduces 4096 rows of 1024 floats 5x faster than a 1024 x 1 one, and 2 x 64 beats 16 x 64 for
# the column case.
ROW_BLOCKS = (8, 16)               # BLOCK_R along a contiguous reduced dim; BLOCK_I = 64 // BLOCK_R
COL_BLOCKS = (4, 16, 64)           # BLOCK_I along a contiguous kept dim; BLOCK_R = 128 // BLOCK_I


@dataclass
class Layout:
    """x (possibly a contiguous copy of the caller's input) seen as kept x reduced dims.

    kept/red: three (size, x stride, y stride) triples each, outermost first; the last is the
    tile dim (I, Q2). count: number of reduced elements per output element."""

    x: Operand
    kept: list
    red: list
    block_r: int
    block_i: int
    row: bool      # the tile runs along the reduced dim (see red_kernels: ROW)

    @property
    def count(self) -> int:
        return self.red[0][0] * self.red[1][0] * self.red[2][0]

    @property
    def outputs(self) -> int:
        return self.kept[0][0] * self.kept[1][0] * self.kept[2][0]

    @property
    def grid(self) -> tuple[int, int]:
        return (self.kept[0][0] * self.kept[1][0], -(-self.kept[2][0] // self.block_i))

    def args(self, y_strides: bool = True) -> tuple:
        """Kernel arguments after the pointers: O1, I, Q0, Q1, Q2, then the x strides of the kept
        dims, the y strides of the kept dims, the x strides of the reduced dims (and their y
        strides when `y_strides`)."""
        (_, xo0, yo0), (o1, xo1, yo1), (i, xi, yi) = self.kept
        (q0, xq0, yq0), (q1, xq1, yq1), (q2, xq2, yq2) = self.red
        out = (o1, i, q0, q1, q2, xo0, xo1, xi, yo0, yo1, yi, xq0, xq1, xq2)
        return out + ((yq0, yq1, yq2) if y_strides else ())

    def meta(self, y: bool = True) -> dict:
        """The kernels' layout constexprs: contiguity flags XC/XR (x's stride along I / Q2 is 1)
        and, with `y`, YC/YR (the output's), the tile orientation ROW and the block sizes."""
        out = {"XC": self.kept[2][1] == 1, "XR": self.red[2][1] == 1}
        if y:
            out.update(YC=self.kept[2][2] == 1, YR=self.red[2][2] == 1)
        return dict(out, ROW=int(self.row), BLOCK_R=self.block_r, BLOCK_I=self.block_i)


def _merge(dims: list) -> list:
    """Merge neighbours that every stride walks as one; drop size-1 dims (keep size-0 ones)."""
    out: list = []
    for n, *st in dims:
        if n == 1:
            continue
        if out and all(ps == s * n for ps, s in zip(out[-1][1:], st)):
            out[-1] = (out[-1][0] * n, *st)
            continue
        out.append((n, *st))
    return out


def _order(dims: list) -> list:
    """The dim with the smallest input stride last (it becomes the tile dim)."""
    if not dims:
        return dims
    k = min(range(len(dims)), key=lambda j: (abs(dims[j][1]), -j))
    return dims[:k] + dims[k + 1:] + [dims[k]]


def _pad(dims: list) -> list:
    return [(1, 0, 0)] * (MAX_DIMS - len(dims)) + dims


def _pick(n: int, choices: tuple) -> int:
    for c in choices:
        if n <= c:
            return c
    return choices[-1]


def plan(op: str, x: Operand, axes, y_strides, sort_reduced: bool = True) -> Layout:
    """The layout of x reduced (or normalised) over `axes` (sorted, non-negative).

    y_strides: the output's stride for every dim of x (0 for reduced dims of a reduction).
    sort_reduced: the reduced dims may be walked in any order (sums, maxima): sort them by
    stride so that more of them merge. Order-sensitive ops (scans, arg-reductions) have one axis.
    """
    axes = set(axes)
    for attempt in range(2):
        kept = [(x.shape[d], x.strides[d], y_strides[d]) for d in range(x.ndim) if d not in axes]
        red = [(x.shape[d], x.strides[d], y_strides[d]) for d in range(x.ndim) if d in axes]
        if sort_reduced:
            red.sort(key=lambda t: -abs(t[1]))
        kept, red = _merge(kept), _merge(red)
        if len(kept) <= MAX_DIMS and len(red) <= MAX_DIMS:
            break
        if attempt == 0:
            x = contiguous(x)
    else:
        raise UnsupportedError(f"{op}: a rank-{x.ndim} input reduced over axes {sorted(axes)} needs more than "
                               f"{MAX_DIMS} kept or reduced dim groups",
                               hint="inputs of rank <= 6 are always supported; reshape to merge dims")
    check_offsets(op, x)
    kept, red = _pad(_order(kept)), _pad(_order(red))
    q2, sq2 = red[2][0], red[2][1]
    i, si = kept[2][0], kept[2][1]
    if i == 1 or (q2 > 1 and abs(sq2) < abs(si)):   # the row case: the tile runs along Q2
        block_r = _pick(q2, ROW_BLOCKS)
        return Layout(x, kept, red, block_r, 1 if i == 1 else 64 // block_r, True)
    block_i = _pick(i, COL_BLOCKS)
    return Layout(x, kept, red, 128 // block_i, block_i, False)
