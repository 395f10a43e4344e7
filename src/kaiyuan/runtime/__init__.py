"""kaiyuan.runtime: devices, memory, streams and events, tensors (DESIGN.md §5).

Everything in `__all__` is re-exported as `kaiyuan.*`.
"""

from . import dtypes
from .backend import (Allocator, Backend, Buffer, Capabilities, Compiler, Device, PointerArg, Program, ScalarArg,
                      Stage)
from .dtypes import (DType, bfloat16, bool_, dtype, float16, float32, float64, int8, int16, int32, int64,
                     uint8, uint16, uint32, uint64)
from .errors import (ArgumentError, CacheError, CommError, CommMismatchError, CompilationError, ConstexprError, DeviceAssertError, DeviceError,
                     IRParseError, IRVerifyError, KaiyuanError, LaunchError, MemoryAccessError, ModelError, ModelFileError,
                     OutOfMemoryError, ToolchainError, TopologyError, UnsupportedError)
from .factories import empty, empty_like, from_numpy, tensor, zeros, zeros_like
from .interop import as_kernel_pointer, dtype_of
from .memory import empty_cache, memory_stats
from .registry import DeviceInfo, default_device, device, devices, get_device, register_backend, unregister_backend
from .stream import Event, Stream, current_stream, default_stream, stream, synchronize
from .tensor import Tensor

# Triton's short names for dtypes, as attributes: ky.fp32, ky.i32, ...
fp16, bf16, fp32, fp64 = float16, bfloat16, float32, float64
i1, i8, i16, i32, i64 = bool_, int8, int16, int32, int64
u8, u16, u32, u64 = uint8, uint16, uint32, uint64

__all__ = [
    # devices
    "Device", "DeviceInfo", "Backend", "Allocator", "Buffer", "Capabilities", "Compiler", "Stage", "Program",
    "PointerArg",
    "ScalarArg", "device", "devices", "get_device", "default_device",
    "register_backend", "unregister_backend",
    # memory
    "memory_stats", "empty_cache",
    # streams and events
    "Stream", "Event", "current_stream", "default_stream", "stream", "synchronize",
    # tensors
    "Tensor", "tensor", "empty", "zeros", "empty_like", "zeros_like", "from_numpy",
    "as_kernel_pointer", "dtype_of",
    # dtypes
    "DType", "dtype", "float16", "bfloat16", "float32", "float64", "bool_", "int8", "int16", "int32",
    "int64", "uint8", "uint16", "uint32", "uint64",
    "fp16", "bf16", "fp32", "fp64", "i1", "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64",
    # errors
    "KaiyuanError", "CompilationError", "ConstexprError", "IRParseError", "IRVerifyError", "ToolchainError",
    "LaunchError", "ArgumentError", "MemoryAccessError", "DeviceAssertError", "UnsupportedError",
    "OutOfMemoryError", "DeviceError", "CacheError", "ModelError", "ModelFileError", "CommError", "CommMismatchError",
    "TopologyError",
]
