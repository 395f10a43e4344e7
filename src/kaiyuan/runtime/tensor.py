"""`ky.Tensor`: a strided view of elements of one dtype in a device `Buffer`.

Strides are in elements (as in PyTorch) and may be negative; `offset` is the byte position of
element [0, ..., 0] in the buffer. On host devices (cpu, interp) `.numpy()` is a zero-copy view;
on other devices it copies after waiting for the current stream. Copies between tensors are
queued on the destination device's current stream, so they keep their order with launches.
"""

from __future__ import annotations

from math import prod

import numpy as np

from . import capture as _capture
from .backend import Buffer, Device
from .dtypes import DType, dtype as to_dtype
from .errors import ArgumentError, UnsupportedError
from .stream import current_stream

DLPACK_CPU = 1  # DLDeviceType kDLCPU


def contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


class Tensor:
    """Use the factories (`ky.tensor`, `ky.empty`, `ky.from_numpy`, ...) rather than this class."""

    def __init__(self, buffer: Buffer, shape, dtype: DType, strides=None, offset: int = 0):
        self.buffer = buffer
        self.shape = tuple(shape)
        self.dtype = dtype
        self._strides = tuple(strides) if strides is not None else contiguous_strides(self.shape)
        self.offset = offset

    # ---- metadata ------------------------------------------------------------------------------
    @property
    def device(self) -> Device:
        return self.buffer.device

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def numel(self) -> int:
        return prod(self.shape)

    def element_size(self) -> int:
        return self.dtype.itemsize

    @property
    def nbytes(self) -> int:
        return self.numel() * self.dtype.itemsize

    def stride(self, dim: int | None = None):
        """Strides in elements; one of them when `dim` is given."""
        return self._strides if dim is None else self._strides[dim]

    def is_contiguous(self) -> bool:
        return all(st == c for n, st, c in zip(self.shape, self._strides, contiguous_strides(self.shape)) if n > 1)

    def __len__(self) -> int:
        if not self.shape:
            raise ArgumentError("len() of a 0-d tensor", hint="use .item()")
        return self.shape[0]

    def byte_span(self) -> tuple[int, int]:
        """[lo, hi) bytes of the buffer that this tensor's elements occupy."""
        if self.numel() == 0:
            return self.offset, self.offset
        size = self.dtype.itemsize
        lo = self.offset + size * sum(min(0, s * (n - 1)) for n, s in zip(self.shape, self._strides))
        hi = self.offset + size * sum(max(0, s * (n - 1)) for n, s in zip(self.shape, self._strides))
        return lo, hi + size

    # ---- host access -----------------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """Zero-copy view on host devices (it does not wait for streams); a copy elsewhere."""
        if self.device.is_host:
            return self._host_view()
        current_stream(self.device).synchronize()
        return read_host(self).copy()

    def _host_view(self) -> np.ndarray:
        raw = self.device.allocator.host_view(self.buffer)
        pinned = np.asarray(_Pin(raw, self.buffer))  # the view keeps the buffer alive
        return strided_view(pinned, self.offset, self.shape, self.dtype, self._strides)

    def __array__(self, dtype=None, copy=None):
        arr = self.numpy()
        if dtype is not None:
            arr = arr.astype(dtype, copy=False)
        return arr.copy() if copy else arr

    def item(self):
        return self.numpy().item()

    def tolist(self):
        return self.numpy().tolist()

    def data_ptr(self) -> int:
        """Address of element [0, ..., 0] (host devices only)."""
        raw = self.device.allocator.host_view(self.buffer)
        if raw is None:
            raise UnsupportedError(f"data_ptr() of a tensor on {self.device.name}: not host memory",
                                   hint="use .to('cpu') first")
        return raw.ctypes.data + self.offset

    def __dlpack__(self, stream=None, max_version=None, dl_device=None, copy=None):
        if not self.device.is_host:
            raise UnsupportedError(f"DLPack export from {self.device.name} is not supported yet",
                                   hint="use .to('cpu') first")
        if self.dtype.name == "bf16":
            raise UnsupportedError("numpy's DLPack export cannot carry bf16",
                                   hint="export a bf16 tensor's bits with .numpy().view('int16')")
        kwargs = {k: v for k, v in (("max_version", max_version), ("dl_device", dl_device), ("copy", copy)) if v is not None}
        return self.numpy().__dlpack__(**kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        if not self.device.is_host:
            raise UnsupportedError(f"DLPack export from {self.device.name} is not supported yet",
                                   hint="use .to('cpu') first")
        return (DLPACK_CPU, 0)

    def __repr__(self) -> str:
        values = np.array2string(np.asarray(self.numpy(), dtype=np.float64 if self.dtype.name == "bf16" else None),
                                 separator=", ", threshold=64, prefix="tensor(")
        return f"tensor({values}, dtype={self.dtype!r}, device={self.device.name!r})"

    # ---- copies ---------------------------------------------------------------------------------
    def to(self, device=None, dtype=None, non_blocking: bool = False) -> "Tensor":
        """This tensor on `device` and/or of `dtype` (`t.to("interp")`, `t.to(ky.fp16)`,
        `t.to(dev, "bf16")`): itself when neither changes, else a new contiguous tensor.

        Between devices the bytes travel through host memory (the source allocator's `copy_out`,
        then the destination's `copy_in`; host devices copy view to view), after the source
        device's current stream has finished. Strides are not kept: a view with gaps, negative
        or zero strides arrives as a dense tensor of the same shape and values. A dtype change
        converts with numpy's rules (float → int truncates, ints wrap)."""
        from .factories import empty, tensor
        from .registry import get_device

        if dtype is None and isinstance(device, (DType, np.dtype, type)):  # t.to(ky.fp16)
            device, dtype = None, device
        dst = self.device if device is None else get_device(device)
        dt = self.dtype if dtype is None else to_dtype(dtype)
        if dt != self.dtype:
            current_stream(self.device).synchronize()
            return tensor(read_host(self).astype(dt.np), device=dst)
        if dst is self.device:
            return self
        out = empty(self.shape, self.dtype, dst)
        enqueue_copy(out, self, non_blocking)
        return out

    def contiguous(self) -> "Tensor":
        if self.is_contiguous():
            return self
        from .factories import empty

        out = empty(self.shape, self.dtype, self.device)
        enqueue_copy(out, self, non_blocking=False)
        return out

    def copy_(self, src, non_blocking: bool = False) -> "Tensor":
        """Copy `src` (a Tensor or array-like, broadcast to this shape) into this tensor."""
        if not isinstance(src, Tensor) or src.dtype != self.dtype or src.shape != self.shape:
            from .factories import tensor

            host = np.asarray(src.numpy() if isinstance(src, Tensor) else src)
            src = tensor(np.broadcast_to(host.astype(self.dtype.np), self.shape), device=self.device)
        enqueue_copy(self, src, non_blocking)
        return self


class _Pin:
    """Exposes a host buffer's bytes to numpy while keeping the Buffer (and its block) alive."""

    def __init__(self, raw: np.ndarray, buffer: Buffer):
        self.buffer = buffer
        self.__array_interface__ = raw.__array_interface__


def strided_view(raw: np.ndarray, first: int, shape, dtype: DType, strides) -> np.ndarray:
    """Elements of `dtype` at byte `first` of uint8 `raw`, with element `strides` (any sign)."""
    if prod(shape) == 0:
        return np.empty(shape, dtype.np)
    size = dtype.itemsize
    return np.ndarray(shape, dtype.np, buffer=raw, offset=first, strides=tuple(s * size for s in strides))


def read_host(t: Tensor) -> np.ndarray:
    """The tensor's elements in host memory: a view on host devices, a fresh copy elsewhere."""
    if t.device.is_host:
        return t._host_view()
    lo, hi = t.byte_span()
    raw = np.empty(hi - lo, np.uint8)
    if hi > lo:
        t.device.allocator.copy_out(t.buffer, lo, raw)
    return strided_view(raw, t.offset - lo, t.shape, t.dtype, t.stride())


def write_host(t: Tensor, values: np.ndarray) -> None:
    """Store host `values` (already of t's dtype and shape) into the tensor's elements."""
    _capture.taint()  # device memory written outside a launch: a capture of this cannot replay it
    if t.device.is_host:
        np.copyto(t._host_view(), values)
    elif t.is_contiguous():
        if t.numel():
            t.device.allocator.copy_in(t.buffer, t.offset, np.ascontiguousarray(values))
    else:  # read-modify-write of the span keeps the bytes between strided elements intact
        lo, hi = t.byte_span()
        raw = np.empty(hi - lo, np.uint8)
        t.device.allocator.copy_out(t.buffer, lo, raw)
        np.copyto(strided_view(raw, t.offset - lo, t.shape, t.dtype, t.stride()), values)
        t.device.allocator.copy_in(t.buffer, lo, raw)


def copy_now(dst: Tensor, src: Tensor) -> None:
    """dst[...] = src, same shape and dtype, run immediately."""
    same = dst.device is src.device
    _capture.taint()
    if same and not dst.device.is_host and dst.is_contiguous() and src.is_contiguous():
        dst.device.allocator.copy(dst.buffer, dst.offset, src.buffer, src.offset, src.nbytes)
    else:
        write_host(dst, read_host(src))


def enqueue_copy(dst: Tensor, src: Tensor, non_blocking: bool) -> None:
    """Queue dst[...] = src on dst's current stream, after src's device finished pending work."""
    if src.device is not dst.device:
        current_stream(src.device).synchronize()
    s = current_stream(dst.device)
    s.submit(lambda: copy_now(dst, src))
    if not non_blocking:
        s.synchronize()
