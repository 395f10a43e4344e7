"""Foreign arrays in, kernel pointers out: numpy, DLPack producers (PyTorch, JAX...), ky tensors.

`as_kernel_pointer` sits on the launch hot path, so host arrays are wrapped without the general
byte-bounds machinery when the memory lies inside one C-contiguous numpy root array (the usual
case: the array itself, or a slice / reversed view of one).
"""

from __future__ import annotations

import sys

import ml_dtypes
import numpy as np

from .backend import Buffer, Device, PointerArg
from .dtypes import BY_NAME, DType, dtype
from .errors import ArgumentError, DeviceError, UnsupportedError
from .tensor import Tensor

_HOST_DLPACK_DEVICES = (1, 3)  # kDLCPU, kDLCUDAHost: memory the CPU can address


def host_array(obj) -> np.ndarray:
    """A numpy view of a host array or a CPU DLPack producer (no copy where possible)."""
    if isinstance(obj, np.ndarray):
        return obj
    if hasattr(obj, "__dlpack__"):
        return _from_dlpack(obj)
    return np.asarray(obj)


def _from_dlpack(obj) -> np.ndarray:
    where = obj.__dlpack_device__()[0] if hasattr(obj, "__dlpack_device__") else 1
    if where not in _HOST_DLPACK_DEVICES:
        raise ArgumentError(f"a {type(obj).__name__} on DLPack device type {where} is not in host memory",
                            hint="move it to the CPU first (e.g. .cpu()), or make it a ky tensor on that device")
    if str(getattr(obj, "dtype", "")).endswith("bfloat16"):
        return _bf16_from_dlpack(obj)
    try:
        return np.from_dlpack(obj)
    except (BufferError, RuntimeError, TypeError) as e:
        detach = getattr(obj, "detach", None)  # PyTorch refuses to export tensors needing grad
        if detach is None:
            raise ArgumentError(f"cannot import {type(obj).__name__} via DLPack: {e}",
                                hint="pass a numpy array or a ky tensor") from e
        return np.from_dlpack(detach())


def _bf16_from_dlpack(obj) -> np.ndarray:
    """numpy's DLPack import knows no bf16: import the bits as int16 of the producer's library."""
    library = sys.modules.get(type(obj).__module__.partition(".")[0])
    int16 = getattr(library, "int16", None)
    if int16 is None or not hasattr(obj, "view"):
        raise UnsupportedError(f"cannot import a bf16 {type(obj).__name__} without copying",
                               hint="pass its bits viewed as int16, or a numpy array of ml_dtypes.bfloat16")
    if hasattr(obj, "detach"):
        obj = obj.detach()
    return np.from_dlpack(obj.view(int16)).view(ml_dtypes.bfloat16)


def dtype_of(obj) -> DType:
    """The element type a kernel sees for an argument: tensors' dtypes, Python scalars as Triton does."""
    if isinstance(obj, Tensor):
        return obj.dtype
    if isinstance(obj, (bool, np.bool_)):
        return BY_NAME["i1"]
    if isinstance(obj, int):
        if -(2**31) <= obj < 2**31:
            return BY_NAME["i32"]
        return BY_NAME["i64"] if -(2**63) <= obj < 2**63 else BY_NAME["u64"]
    if isinstance(obj, float):
        return BY_NAME["fp32"]
    if hasattr(obj, "dtype"):
        return dtype(obj.dtype if isinstance(obj, (np.ndarray, np.generic)) else str(obj.dtype))
    raise ArgumentError(f"no element type for a {type(obj).__name__}",
                        hint="pass a ky tensor, a numpy array, a DLPack tensor, or a Python scalar")


def as_kernel_pointer(obj, device: Device | None = None) -> tuple[PointerArg, Device | None, DType]:
    """A pointer argument for `obj`, the device it lives on (None: host memory), and its dtype.

    `device` is the host device to wrap bare host arrays on (default: the default device, or
    the first host device if the default one is not host memory)."""
    if isinstance(obj, Tensor):
        return PointerArg(obj.buffer, obj.offset, obj.dtype), obj.device, obj.dtype
    if not isinstance(obj, np.ndarray):
        if not hasattr(obj, "__dlpack__"):
            raise ArgumentError(f"a {type(obj).__name__} cannot be a pointer argument",
                                hint="pass a ky tensor, a numpy array, or a DLPack tensor (e.g. torch) on the CPU")
        obj = _from_dlpack(obj)
    dt = dtype(obj.dtype)
    buffer, offset = wrap_host_array(obj, device or host_device())
    return PointerArg(buffer, offset, dt), None, dt


def host_device() -> Device:
    """The default device if its memory is host memory, else the first host device there is."""
    from .registry import default_device, get_device

    dev = default_device()
    if dev.is_host:
        return dev
    from .registry import devices

    for info in devices():  # the first present device whose memory is host memory
        try:
            candidate = get_device(info.name) if info.available else None
        except DeviceError:
            continue
        if candidate is not None and candidate.is_host:
            return candidate
    raise DeviceError("no host device (cpu or interp) is available to hold a host array",
                      hint="see `kaiyuan devices`; pass ky tensors created on your device instead")


def wrap_host_array(arr: np.ndarray, device: Device, address: int | None = None) -> tuple[Buffer, int]:
    """Borrow `arr`'s memory as a Buffer of `device`; returns it and the byte offset of arr[0,...].
    `address`: arr's data address when the caller has it already (it costs ~1 us to ask numpy)."""
    allocator = device.allocator
    if _uses_host_allocator_layout(allocator):
        fast = _fast_host_buffer(arr, device, address)
        if fast is not None:
            return fast
    buffer = allocator.wrap_host(arr)
    if buffer is None:
        raise DeviceError(f"{device.name} cannot address host memory", hint="copy the array to a ky tensor first")
    return buffer, data_address(arr) - byte_bounds(arr)[0]


def _uses_host_allocator_layout(allocator) -> bool:
    """True for kaiyuan.backends.host's allocator, whose handles the fast path rebuilds.

    Looked up in sys.modules rather than imported: the runtime never imports backends (a backend
    using it has imported it already, else no allocator can be one)."""
    host = sys.modules.get("kaiyuan.backends.host")
    return host is not None and type(allocator).wrap_host is host.HostAllocator.wrap_host


def _fast_host_buffer(arr: np.ndarray, device: Device, address: int | None = None) -> tuple[Buffer, int] | None:
    """The HostAllocator's handle (uint8 array over the byte bounds), built from a contiguous root."""
    if arr.flags.c_contiguous:
        address = data_address(arr) if address is None else address
        return Buffer(device, arr.nbytes, arr.reshape(-1).view(np.uint8), owner=arr, address=address), 0
    root = arr
    while isinstance(root.base, np.ndarray):
        root = root.base
    lo, hi = byte_bounds(arr)
    start = data_address(root)
    if not root.flags.c_contiguous or lo < start or hi > start + root.nbytes:
        return None
    handle = root.reshape(-1).view(np.uint8)[lo - start:hi - start]
    return Buffer(device, hi - lo, handle, owner=arr, address=lo), data_address(arr) - lo


def _array_data_reader():
    """A reader of an exact numpy.ndarray's data pointer straight from the object: NumPy's
    PyArrayObject starts with PyObject_HEAD and then `char *data` (the layout its C API macros
    read, stable across NumPy 1 and 2). `arr.ctypes.data` builds a ctypes helper object and costs
    ~1-2 us; this costs ~0.2 us, which the eager launch plans pay per array per call. Used only on
    CPython (where id() is the address) and only if it agrees with numpy on probe arrays."""
    if sys.implementation.name != "cpython":
        return None
    import ctypes

    offset, read = object.__basicsize__, ctypes.c_void_p.from_address
    probes = [np.empty(3), np.zeros((2, 3), np.float32)[:, 1:], np.empty(0)]
    if any((read(id(a) + offset).value or 0) != a.ctypes.data for a in probes):
        return None
    return lambda arr: read(id(arr) + offset).value or 0


_READ_DATA = _array_data_reader()


def data_address(arr: np.ndarray) -> int:
    """`arr.ctypes.data`, faster for exact numpy arrays (see _array_data_reader)."""
    if _READ_DATA is not None and type(arr) is np.ndarray:
        return _READ_DATA(arr)
    return arr.ctypes.data


def byte_bounds(arr: np.ndarray) -> tuple[int, int]:
    """[lo, hi) addresses of the bytes `arr` spans (any strides, negative ones included)."""
    lo = hi = data_address(arr)
    if arr.size == 0:
        return lo, lo
    for n, s in zip(arr.shape, arr.strides):
        if s < 0:
            lo += s * (n - 1)
        else:
            hi += s * (n - 1)
    return lo, hi + arr.itemsize
