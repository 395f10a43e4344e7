"""What travels with every message: a small header that lets the receiver check, for free, that
the sender is in the same collective (kind, sequence number, dtype, element count, op, root).
A mismatch is reported as CommMismatchError instead of corrupting data or hanging."""

from __future__ import annotations

import struct
from typing import NamedTuple

import ml_dtypes
import numpy as np

KINDS = ("all_reduce", "all_gather", "reduce_scatter", "broadcast", "reduce", "all_to_all", "barrier",
         "send", "gather", "scatter")
DTYPES = [np.dtype(t) for t in (np.float16, ml_dtypes.bfloat16, np.float32, np.float64, np.bool_, np.int8,
                                np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64)]
_DTYPE_CODE = {d: i for i, d in enumerate(DTYPES)}
ANY = -1  # a field the receiver does not check (all_to_all's count: splits may be uneven)


class Header(NamedTuple):
    kind: int
    seq: int
    dtype: int
    count: int
    op: int
    root: int

    def describe(self) -> str:
        kind = KINDS[self.kind] if 0 <= self.kind < len(KINDS) else f"kind {self.kind}"
        dt = DTYPES[self.dtype].name if 0 <= self.dtype < len(DTYPES) else "?"
        text = f"{kind} #{self.seq} of {'?' if self.count == ANY else self.count} {dt}"
        if kind in ("all_reduce", "reduce", "reduce_scatter"):
            from .reduce_op import ReduceOp

            text += f" op={ReduceOp(self.op).name}"
        if self.root >= 0:
            text += f" root={self.root}"
        return text


_FMT = struct.Struct("<6q")
SIZE = _FMT.size


def dtype_code(dtype: np.dtype) -> int:
    from ..runtime.errors import UnsupportedError

    try:
        return _DTYPE_CODE[np.dtype(dtype)]
    except KeyError:
        raise UnsupportedError(f"kaiyuan.comm cannot carry dtype {np.dtype(dtype)}",
                               hint="numeric dtypes: " + ", ".join(d.name for d in DTYPES)) from None


def make(kind: str, seq: int, dtype, count: int, op: int = 0, root: int = -1) -> Header:
    return Header(KINDS.index(kind), seq, dtype_code(dtype), count, op, root)


def pack(h: Header) -> bytes:
    return _FMT.pack(*h)


def unpack(b) -> Header:
    return Header(*_FMT.unpack(bytes(b[:SIZE])))


def agrees(mine: Header, theirs: Header) -> bool:
    return all(a == b or a == ANY or b == ANY for a, b in zip(mine, theirs))


class WireMismatch(Exception):
    """Raised by a transport: a message from `src` (a global rank) does not fit what we expect."""

    def __init__(self, src: int, theirs: Header, nbytes: int, expected_nbytes: int):
        self.src, self.theirs, self.nbytes, self.expected_nbytes = src, theirs, nbytes, expected_nbytes
        super().__init__(f"mismatch from rank {src}")


class WireTimeout(Exception):
    """Raised by a transport when the deadline passed: `waiting` are the global ranks it waited on,
    `dead` those it knows have died (with a reason each)."""

    def __init__(self, waiting, dead=None):
        self.waiting, self.dead = sorted(set(waiting)), dict(dead or {})
        super().__init__(f"waiting for {self.waiting}")


def check(src: int, mine: Header, theirs: Header, nbytes: int, out_nbytes: int) -> None:
    if not agrees(mine, theirs) or nbytes != out_nbytes:
        raise WireMismatch(src, theirs, nbytes, out_nbytes)
