"""Pointer values and bounds-checked memory access.

A pointer (scalar or tile) is a `Ptr`: the `Memory` it points into (one per distinct buffer of a
launch), the pointee dtype, and int64 BYTE offsets into that buffer (a numpy scalar or an array of
the tile's shape). Pointer arithmetic only ever adds multiples of the pointee size, so a lane is
aligned exactly when the argument it derives from is; `aligned` carries that fact and lets the
common case skip a per-lane alignment test.

Every load, store and atomic checks each active (mask-true) lane: 0 <= offset <= nbytes - itemsize
and aligned. Masked-off lanes never touch memory: their index is replaced by a valid one before the
gather, and their result is `other`.
"""

from __future__ import annotations

import numpy as np

from ...runtime.errors import MemoryAccessError, UnsupportedError

HINT = "mask the access (mask=offsets < n) or check the grid"


class Memory:
    """A buffer's bytes, with one typed view per pointee dtype (made on first use)."""

    def __init__(self, data: np.ndarray):
        self.data = data
        self.nbytes = data.nbytes
        self.addr = data.ctypes.data if data.size else 0
        self._views: dict = {}

    def view(self, dt: np.dtype):
        """(typed view, phase): element i of the view starts at byte phase + i*itemsize."""
        v = self._views.get(dt)
        if v is None:
            isz = dt.itemsize
            phase = (-self.addr) % isz
            n = max(0, (self.nbytes - phase) // isz)
            v = self._views[dt] = (self.data[phase:phase + n * isz].view(dt), phase)
        return v


class Ptr:
    __slots__ = ("mem", "dtype", "off", "base", "aligned", "name")

    def __init__(self, mem: Memory, dtype: np.dtype, off, base: int, aligned: bool, name: str):
        self.mem, self.dtype, self.off, self.base, self.aligned, self.name = mem, dtype, off, base, aligned, name

    def with_offsets(self, off) -> "Ptr":
        return Ptr(self.mem, self.dtype, off, self.base, self.aligned, self.name)

    @property
    def shape(self):
        return np.shape(self.off)

    def __repr__(self) -> str:
        return f"ptr<{self.dtype}>({self.name}+{self.off})"


def select(cond, a: Ptr, b: Ptr) -> Ptr:
    if a.mem is not b.mem or a.dtype != b.dtype:
        raise UnsupportedError("the interp backend cannot select between pointers into different buffers",
                               hint="select the offsets instead and add them to one pointer")
    p = a.with_offsets(np.where(cond, a.off, b.off))
    p.aligned = a.aligned and b.aligned
    return p


class Access:
    """Checks and performs the accesses of one memory op (`opname` at `loc`); `pid()` is the
    running program id, asked for only when an error is reported."""

    def __init__(self, opname: str, loc: str | None, pid):
        self.opname, self.loc, self.pid = opname, loc, pid

    def indices(self, p: Ptr, mask):
        """Element indices into p.mem.view(p.dtype) for every lane; masked-off lanes get index 0.
        Raises MemoryAccessError for the first bad active lane."""
        isz = p.dtype.itemsize
        view, phase = p.mem.view(p.dtype)
        off = p.off
        act = off if mask is None else off[mask] if np.ndim(off) else (off if mask else None)
        if act is not None and np.size(act):
            lo, hi = np.min(act), np.max(act)
            if lo < 0 or hi > p.mem.nbytes - isz or not (p.aligned or not np.any((act - phase) % isz)):
                self._report(p, mask)
        idx = (off - phase) // isz
        if mask is not None:
            idx = np.where(mask, idx, 0)
        return view, idx

    def _report(self, p: Ptr, mask):
        isz = p.dtype.itemsize
        off = np.asarray(p.off)
        active = np.ones(off.shape, bool) if mask is None else np.broadcast_to(np.asarray(mask), off.shape)
        bad = active & ((off < 0) | (off > p.mem.nbytes - isz) | ((off + p.mem.addr) % isz != 0))
        flat = int(np.flatnonzero(bad.reshape(-1))[0]) if off.ndim else 0
        lane = tuple(int(i) for i in np.unravel_index(flat, off.shape)) if off.ndim > 1 else flat
        o = int(off.reshape(-1)[flat])
        rel = o - p.base
        elem = rel // isz if rel % isz == 0 else f"{rel / isz:.2f} (misaligned)"
        avail = max(0, (p.mem.nbytes - p.base) // isz)
        x, y, z = self.pid()
        raise MemoryAccessError(
            f"{self.opname}: out-of-bounds access in program ({x}, {y}, {z}): lane {lane} accesses element "
            f"{elem} of argument '{p.name}' (byte {o} of a {p.mem.nbytes}-byte buffer; {avail} elements of "
            f"{p.dtype} from the argument's start)",
            loc=self.loc, hint=HINT)

    def load(self, p: Ptr, mask, other):
        view, idx = self.indices(p, mask)
        if mask is None:
            return view[idx]
        if not np.any(mask):
            return _fill(other, p)
        if len(view) == 0:
            return _fill(other, p)
        return np.where(mask, view[idx], _fill(other, p))

    def store(self, p: Ptr, value, mask) -> None:
        view, idx = self.indices(p, mask)
        if np.ndim(idx) == 0:
            if mask is None or mask:
                view[idx] = value
            return
        value = np.broadcast_to(value, np.shape(idx))
        if mask is None:
            view[idx] = value
        else:
            view[idx[mask]] = value[mask]

    def rmw(self, p: Ptr, value, mask, update):
        """Apply `update(old, v, lane)` lane by lane in row-major order; return the old values."""
        view, idx = self.indices(p, mask)
        shape = np.shape(idx)
        idx, value = np.reshape(idx, -1), np.reshape(np.broadcast_to(value, shape), -1)
        lanes = range(idx.size) if mask is None else np.flatnonzero(np.reshape(mask, -1))
        old = np.zeros(idx.size, p.dtype)
        for i in lanes:
            j = idx[i]
            o = view[j]
            old[i] = o
            new = update(o, value[i], i)
            if new is not None:
                view[j] = new
        return old.reshape(shape)[()] if shape == () else old.reshape(shape)


def _fill(other, p: Ptr):
    return np.zeros(p.shape, p.dtype) if other is None else np.broadcast_to(other, p.shape)
