"""Ways to make a tensor: from data (always a copy), empty/zeros, and zero-copy `from_numpy`."""

from __future__ import annotations

from math import prod
from numbers import Integral

import numpy as np

from .dtypes import DType, dtype as to_dtype
from .errors import ArgumentError
from .interop import host_array, wrap_host_array
from .memory import caching_allocator
from .registry import get_device
from .tensor import Tensor, enqueue_copy, write_host

# Python lists and scalars get PyTorch's defaults, not numpy's: floats are fp32, ints i64.
_PYTHON_DEFAULTS = {np.dtype(np.float64): "fp32", np.dtype(np.int64): "i64"}


def _shape(shape) -> tuple[int, ...]:
    dims = (shape,) if isinstance(shape, Integral) else tuple(shape)
    if not all(isinstance(n, Integral) and n >= 0 for n in dims):
        raise ArgumentError(f"bad tensor shape {shape!r}", hint="a shape is a sequence of non-negative ints")
    return tuple(int(n) for n in dims)


def empty(shape, dtype="fp32", device=None) -> Tensor:
    """An uninitialised contiguous tensor, from the device's caching allocator."""
    dev = get_device(device)
    dims, dt = _shape(shape), to_dtype(dtype)
    buffer = caching_allocator(dev).alloc(prod(dims) * dt.itemsize)
    return Tensor(buffer, dims, dt)


def zeros(shape, dtype="fp32", device=None) -> Tensor:
    t = empty(shape, dtype, device)
    write_host(t, np.zeros(t.shape, t.dtype.np))
    return t


def empty_like(t: Tensor, dtype=None, device=None) -> Tensor:
    return empty(t.shape, dtype or t.dtype, device or t.device)


def zeros_like(t: Tensor, dtype=None, device=None) -> Tensor:
    return zeros(t.shape, dtype or t.dtype, device or t.device)


def tensor(data, dtype=None, device=None) -> Tensor:
    """A new tensor holding a copy of `data`: array, nested lists, scalar, DLPack object or Tensor."""
    if isinstance(data, Tensor):
        return _copy_tensor(data, dtype, device)
    arr = host_array(data)
    if not isinstance(data, (np.ndarray, np.generic)) and not hasattr(data, "__dlpack__") and dtype is None:
        dtype = _PYTHON_DEFAULTS.get(arr.dtype)
    dt: DType = to_dtype(dtype if dtype is not None else arr.dtype)
    out = empty(arr.shape, dt, device)
    write_host(out, arr.astype(dt.np, copy=False))
    return out


def _copy_tensor(src: Tensor, dtype, device) -> Tensor:
    dt = to_dtype(dtype) if dtype is not None else src.dtype
    dev = get_device(device if device is not None else src.device)
    if dt != src.dtype:
        return tensor(np.asarray(src.numpy()).astype(dt.np), device=dev)
    out = empty(src.shape, dt, dev)
    enqueue_copy(out, src, non_blocking=False)
    return out


def from_numpy(arr: np.ndarray, device=None) -> Tensor:
    """Share `arr`'s memory on a host device (no copy); other devices get a copy."""
    dev = get_device(device)
    if not dev.is_host:
        return tensor(arr, device=dev)
    dt = to_dtype(arr.dtype)
    if any(s % dt.itemsize for s in arr.strides):
        raise ArgumentError("array strides are not a multiple of its element size",
                            hint="pass np.ascontiguousarray(arr), or use ky.tensor(arr) to copy")
    buffer, offset = wrap_host_array(arr, dev)
    return Tensor(buffer, arr.shape, dt, tuple(s // dt.itemsize for s in arr.strides), offset)
