"""User tensors as flat host arrays: what the algorithms work on, and how results get back.

numpy arrays are used in place when C-contiguous; `ky.Tensor`s on a host device (cpu, interp)
are numpy views of their buffer (after their stream finished pending work); tensors on another
device are copied to the host and written back when the operation ends.
"""

from __future__ import annotations

import numpy as np

from ..runtime.errors import ArgumentError
from . import wire


class Buf:
    """`flat`: a 1-D C-contiguous array of the tensor's elements. `commit()` writes `flat` back
    when it is a copy (only outputs need it)."""

    def __init__(self, t, what: str, writable: bool = True):
        self.t, self.what = t, what
        self._target = None  # numpy array to copy back into, or a ky.Tensor to write_host
        from ..runtime.tensor import Tensor

        if isinstance(t, Tensor):
            from ..runtime.stream import current_stream
            from ..runtime.tensor import read_host

            current_stream(t.device).synchronize()
            if t.device.is_host:
                arr = t.numpy()
            else:
                arr = read_host(t)
                self._target = t
        elif isinstance(t, np.ndarray):
            arr = t
        else:
            raise ArgumentError(f"{what}: kaiyuan.comm works on numpy arrays and ky.Tensors, not {type(t).__name__}",
                                hint="wrap it: ky.tensor(x) or np.asarray(x)")
        wire.dtype_code(arr.dtype)
        if writable and self._target is None and not arr.flags.writeable:
            raise ArgumentError(f"{what}: the array is read-only", hint="pass a writable array for an output")
        self.shape, self.dtype = arr.shape, arr.dtype
        if arr.flags.c_contiguous:
            self.flat = arr.reshape(-1)
        else:
            self.flat = np.ascontiguousarray(arr).reshape(-1)
            if self._target is None:
                self._target = arr
        self.flat = self.flat.view(arr.dtype)  # 0-d arrays become 1-element views too

    @property
    def numel(self) -> int:
        return self.flat.size

    def commit(self) -> None:
        if self._target is None:
            return
        if isinstance(self._target, np.ndarray):
            self._target[...] = self.flat.reshape(self.shape)
        else:
            from ..runtime.tensor import write_host

            write_host(self._target, self.flat.reshape(self.shape))


def same_dtype(bufs: list[Buf], what: str) -> np.dtype:
    dtypes = {b.dtype for b in bufs}
    if len(dtypes) > 1:
        raise ArgumentError(f"{what}: tensors of different dtypes {sorted(d.name for d in dtypes)}",
                            hint="all tensors of one call must share a dtype")
    return bufs[0].dtype
