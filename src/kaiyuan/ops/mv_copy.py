"""The one kernel behind every data-movement operator: a strided copy `dst[view] = src[view]`.

A *view* is memory seen through (offset, strides) in elements over a shared shape: Transpose
permutes the source's strides, Slice offsets and scales them (negative steps too), Expand and Tile
give broadcast dims stride 0, Concat/Split/Pad see a slab of the bigger tensor, DepthToSpace and
SpaceToDepth are a transpose of a reshape. So one kernel copies them all.

Kernels
    `strided_copy_kernel` copies a shape of 6 dims (after merging the dims both views walk as
    one — `collapse` — and left-padding with size-1 dims; more than 6 leading dims are looped over
    on the host). The last dim is the tile's column dim, the first five fold into its row dim: a
    program copies an R x C tile, decomposing its R row indices into five coordinates with
    run-time divisions. Interior tiles (a run-time branch) copy without masks, so contiguous rows
    compile to plain vector loads and stores. Shapes, strides and offsets are run-time arguments
    (never specialised on their values, so one compiled kernel serves every shape); the kernel is
    specialised only on the element *width* (elements are copied as int8/16/32/64 bits, so bool,
    fp16, bf16 ... share the kernels of their width), on whether each view's last dim is
    unit-stride, and on the tile shape (`tile`: C from a few powers of two, R*C <= TILE).
    `mapped_copy_kernel` is the same walk with a table of source offsets per dim instead of
    strides (index maps: Pad's reflect/edge/wrap, Resize's nearest neighbours).
    `fill_kernel` writes one value (read from memory, so any dtype's bits) everywhere.
Offsets are 32-bit: views spanning 2**31 elements or more are an UnsupportedError.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

import numpy as np

import kaiyuan.language as kl

from ..compiler import jit
from ..runtime.dtypes import BY_NAME
from ..runtime.errors import UnsupportedError
from ..runtime.tensor import Tensor, write_host
from ._common import I32_MAX, Context, Operand, collapse, next_pow2

RANK = 6                         # dims the kernel walks
TILE = 2048                      # elements per program on cpu
TILE_REF = 256                   # on interp (numpy per op: fewer lanes keep it quick)
COLS = (1024, 256, 64, 16, 4)    # column tile widths to choose from
_INT_OF_WIDTH = {1: "i8", 2: "i16", 4: "i32", 8: "i64"}
_INTS = ("s0", "s1", "s2", "s3", "s4", "s5", "t0", "t1", "t2", "t3", "t4", "t5",
         "x_off", "y_off", "n_rows", "N", "D1", "D2", "D3", "D4")


@jit
def row_offset(rows, D1, D2, D3, D4, s0, s1, s2, s3, s4):
    """The offset of flat row numbers `rows` unravelled over dims (D0, D1, D2, D3, D4) (row-major,
    D0 implied) with strides s0..s4: the addressing every strided kernel here shares."""
    i4 = rows % D4
    q = rows // D4
    i3 = q % D3
    q = q // D3
    i2 = q % D2
    q = q // D2
    i1 = q % D1
    i0 = q // D1
    return i0 * s0 + i1 * s1 + i2 * s2 + i3 * s3 + i4 * s4


@jit(do_not_specialize=_INTS)
def strided_copy_kernel(x_ptr, y_ptr, x_off, y_off, n_rows, N, D1, D2, D3, D4,
                        s0, s1, s2, s3, s4, s5, t0, t1, t2, t3, t4, t5,
                        X_UNIT: kl.constexpr, Y_UNIT: kl.constexpr, R: kl.constexpr, C: kl.constexpr):
    rows = kl.program_id(0) * R + kl.arange(0, R)
    cols = kl.program_id(1) * C + kl.arange(0, C)
    xr = x_off + row_offset(rows, D1, D2, D3, D4, s0, s1, s2, s3, s4)
    yr = y_off + row_offset(rows, D1, D2, D3, D4, t0, t1, t2, t3, t4)
    if X_UNIT:
        xc = cols
    else:
        xc = cols * s5
    if Y_UNIT:
        yc = cols
    else:
        yc = cols * t5
    xp = x_ptr + xr[:, None] + xc[None, :]
    yp = y_ptr + yr[:, None] + yc[None, :]
    if (kl.program_id(0) + 1) * R <= n_rows and (kl.program_id(1) + 1) * C <= N:
        kl.store(yp, kl.load(xp))  # an interior tile: no masks, so rows compile to plain vector copies
    else:
        mask = (rows < n_rows)[:, None] & (cols < N)[None, :]
        kl.store(yp, kl.load(xp, mask=mask), mask=mask)


_MAP_INTS = ("x_off", "n_rows", "N", "D1", "D2", "D3", "D4", "b0", "b1", "b2", "b3", "b4", "b5")


@jit(do_not_specialize=_MAP_INTS)
def mapped_copy_kernel(x_ptr, y_ptr, m_ptr, x_off, n_rows, N, D1, D2, D3, D4, b0, b1, b2, b3, b4, b5,
                       R: kl.constexpr, C: kl.constexpr):
    """Contiguous y[i0..i5] = x[x_off + sum_k map_k[i_k]]: map_k (offsets in elements) is the
    table m_ptr[b_k : b_k + D_k]."""
    rows = kl.program_id(0) * R + kl.arange(0, R)
    cols = kl.program_id(1) * C + kl.arange(0, C)
    rmask = rows < n_rows
    cmask = cols < N
    i4 = rows % D4
    q = rows // D4
    i3 = q % D3
    q = q // D3
    i2 = q % D2
    q = q // D2
    i1 = q % D1
    i0 = q // D1
    xr = x_off + kl.load(m_ptr + b0 + i0, mask=rmask) + kl.load(m_ptr + b1 + i1, mask=rmask) \
        + kl.load(m_ptr + b2 + i2, mask=rmask) + kl.load(m_ptr + b3 + i3, mask=rmask) \
        + kl.load(m_ptr + b4 + i4, mask=rmask)
    xc = kl.load(m_ptr + b5 + cols, mask=cmask)
    mask = rmask[:, None] & cmask[None, :]
    v = kl.load(x_ptr + xr[:, None] + xc[None, :], mask=mask)
    kl.store(y_ptr + rows[:, None] * N + cols[None, :], v, mask=mask)


@jit(do_not_specialize=("n",))
def fill_kernel(y_ptr, v_ptr, n, HAS_VALUE: kl.constexpr, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    if HAS_VALUE:
        v = kl.load(v_ptr)
    else:
        v = 0
    kl.store(y_ptr + offs, v, mask=offs < n)


@dataclass(frozen=True)
class View:
    """Memory of `base` (a numpy array or ky.Tensor, as the kernel's pointer: its element [0,...])
    seen at element `offset` with element `strides` (one per dim of the copied shape)."""

    base: object
    offset: int
    strides: tuple

    def sub(self, offset: int = 0, strides=None) -> "View":
        return View(self.base, self.offset + offset, self.strides if strides is None else tuple(strides))


def bits(x):
    """x (numpy array or ky.Tensor) reinterpreted as the signed integer type of its width."""
    if isinstance(x, Tensor):
        dt = BY_NAME[_INT_OF_WIDTH[x.dtype.itemsize]]
        return x if x.dtype == dt else Tensor(x.buffer, x.shape, dt, x.stride(), x.offset)
    dt = BY_NAME[_INT_OF_WIDTH[x.dtype.itemsize]].np
    return x if x.dtype == dt else x.view(dt)


def operand(ctx: Context, x, name: str) -> Operand:
    """`ctx.operand` (the array's shape, element strides, dtype) with `obj` as its bits."""
    o = ctx.operand(x, name)
    return Operand(bits(o.obj), o.shape, o.strides, o.dtype, name)


def tile(ctx: Context, n_rows: int, n: int) -> tuple[int, int]:
    """The (R, C) tile for n_rows x n elements: C the widest of COLS that wastes at most a
    quarter of its lanes on n columns, R filling the tile up to TILE elements (TILE_REF on the
    reference device) but no more than the rows there are, so that tiles are interior ones."""
    c = COLS[-1]
    for w in COLS:
        if n >= w or (w // 4 < n and n * 4 >= 3 * w):
            c = w
            break
    r = max(1, (TILE_REF if ctx.is_reference else TILE) // c)
    return min(r, next_pow2(n_rows)), c


def _check_span(op: str, shape, *views: View) -> None:
    for v in views:
        lo = v.offset + sum(min(0, s) * (n - 1) for n, s in zip(shape, v.strides))
        hi = v.offset + sum(max(0, s) * (n - 1) for n, s in zip(shape, v.strides))
        if lo < -I32_MAX or hi > I32_MAX:
            raise UnsupportedError(f"{op}: a view spans more than 2**31 elements; kernels use 32-bit offsets",
                                   hint="split the tensor into smaller parts first")


def copy(ctx: Context, shape, src: View, dst: View, op: str = "copy") -> None:
    """dst[i] = src[i] for every index i of `shape` (the views' bases must have one width)."""
    if prod(shape) == 0:
        return
    _check_span(op, shape, src, dst)
    shp, (sx, sy) = collapse(tuple(shape), src.strides, dst.strides)
    lead = max(0, len(shp) - RANK)
    for idx in np.ndindex(*shp[:lead]):  # dims beyond the kernel's six: one launch per index
        dx = sum(i * s for i, s in zip(idx, sx))
        dy = sum(i * s for i, s in zip(idx, sy))
        _launch(ctx, shp[lead:], src.sub(dx, sx[lead:]), dst.sub(dy, sy[lead:]))


def _launch(ctx: Context, shape, src: View, dst: View) -> None:
    k = RANK - len(shape)
    shape = (1,) * k + tuple(shape)
    sx = (0,) * k + tuple(src.strides)
    sy = (0,) * k + tuple(dst.strides)
    n_rows, n = prod(shape[:5]), shape[5]
    r, c = tile(ctx, n_rows, n)
    grid = (-(-n_rows // r), -(-n // c))
    strided_copy_kernel[grid](src.base, dst.base, src.offset, dst.offset, n_rows, n, *shape[1:5], *sx, *sy,
                              X_UNIT=sx[5] == 1, Y_UNIT=sy[5] == 1, R=r, C=c)


def mapped_copy(ctx: Context, src, maps, dst, op: str = "copy") -> None:
    """Contiguous dst[i] = src[sum_k maps[k][i_k]]: `maps` holds, per dim of dst, the element
    offset in src (its base's element [0, ...]) of each index — Pad's reflect/edge/wrap and
    Resize's nearest neighbours are such maps."""
    shape = tuple(len(m) for m in maps)
    if prod(shape) == 0:
        return
    off = 0
    kept = []
    for m in maps:  # a size-1 dim is a constant offset
        if len(m) == 1:
            off += int(m[0])
        else:
            kept.append(np.asarray(m, dtype=np.int64))
    if not kept:
        kept = [np.zeros(1, np.int64)]
    lo = off + sum(int(m.min()) for m in kept)
    hi = off + sum(int(m.max()) for m in kept)
    if lo < -I32_MAX or hi > I32_MAX or prod(shape) > I32_MAX:
        raise UnsupportedError(f"{op}: more than 2**31 elements; kernels use 32-bit offsets")
    lead = max(0, len(kept) - RANK)
    inner = kept[lead:]
    inner = [np.zeros(1, np.int64)] * (RANK - len(inner)) + inner
    table = np.concatenate(inner + [np.zeros(1, np.int64)]).astype(np.int32)
    starts = np.cumsum([0] + [len(m) for m in inner])[:RANK]
    table = small_array(dst, table)
    dims = [len(m) for m in inner]
    n_rows, n = prod(dims[:5]), dims[5]
    r, c = tile(ctx, n_rows, n)
    grid = (-(-n_rows // r), -(-n // c))
    block = n_rows * n
    for j, idx in enumerate(np.ndindex(*[len(m) for m in kept[:lead]])):
        x_off = off + sum(int(m[i]) for m, i in zip(kept, idx))
        y = dst if not lead else _flat_part(dst, j * block, block)
        mapped_copy_kernel[grid](src, y, table, x_off, n_rows, n, *dims[1:5], *[int(b) for b in starts],
                                 R=r, C=c)


def _flat_part(y, start: int, n: int):
    """Elements [start, start + n) of contiguous y as a 1-d array/tensor."""
    if isinstance(y, Tensor):
        return Tensor(y.buffer, (n,), y.dtype, (1,), y.offset + start * y.dtype.itemsize)
    return y.reshape(-1)[start:start + n]


def fill(ctx: Context, out, value=None) -> None:
    """Every element of contiguous `out` = value[0] (an array of out's width), or zero bits."""
    n = int(prod(out.shape))
    if n == 0:
        return
    block = TILE_REF if ctx.is_reference else TILE
    y = bits(out)
    v = y if value is None else bits(value)
    fill_kernel[(-(-n // block),)](y, v, n, HAS_VALUE=value is not None, BLOCK=block)


def small_array(like, values: np.ndarray):
    """`values` (host metadata: shapes, index tables, attribute values) where `like` lives."""
    if isinstance(like, Tensor) and not like.device.is_host:
        from ..runtime.factories import tensor

        return tensor(values, device=like.device)
    return values


def write_values(out, values: np.ndarray) -> None:
    """Store values known on the host (a Shape's dims, a Constant's value) into an output."""
    values = np.asarray(values, dtype=out.dtype.np if isinstance(out, Tensor) else out.dtype).reshape(out.shape)
    if isinstance(out, Tensor):
        write_host(out, values)
    else:
        np.copyto(out, values)
