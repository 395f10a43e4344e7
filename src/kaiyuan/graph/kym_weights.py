"""The weights member of a .kym file: numpy arrays <-> safetensors bytes.

`safetensors.numpy` writes every dtype we need (it names them by `dtype.name`, ml_dtypes'
bfloat16 and float8 types included) but reads back only the classic numpy ones: it has no
BF16 or F8 entry. So writing goes through `safetensors.numpy.save` and reading through the
lower-level `safetensors.deserialize` (which checks the header, offsets and sizes) with our own
table of type codes. Loaded arrays are writable and own their memory.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import safetensors
import safetensors.numpy

from ..runtime.errors import UnsupportedError

# safetensors type code -> numpy dtype; the set of dtypes a .kym weight may have.
_CODES = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype(np.uint8), "I8": np.dtype(np.int8),
    "U16": np.dtype(np.uint16), "I16": np.dtype(np.int16),
    "U32": np.dtype(np.uint32), "I32": np.dtype(np.int32),
    "U64": np.dtype(np.uint64), "I64": np.dtype(np.int64),
    "F16": np.dtype(np.float16), "F32": np.dtype(np.float32), "F64": np.dtype(np.float64),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn),
    "F8_E4M3FNUZ": np.dtype(ml_dtypes.float8_e4m3fnuz),
    "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
    "F8_E5M2FNUZ": np.dtype(ml_dtypes.float8_e5m2fnuz),
}
# Compare by name: byte order does not matter here (safetensors.numpy byteswaps to little endian).
_SUPPORTED_NAMES = {dt.name for dt in _CODES.values()}


def supported_dtypes() -> list[str]:
    """Names of the numpy dtypes a weight may have."""
    return sorted(_SUPPORTED_NAMES)


def encode_weights(weights: dict[str, np.ndarray]) -> bytes:
    """Serialise `weights` to safetensors bytes; UnsupportedError names a weight that cannot be."""
    ready = {}
    for name, arr in weights.items():
        if not isinstance(name, str) or not name or name == "__metadata__":
            raise UnsupportedError(f"weight name {name!r} cannot be stored in a .kym file",
                                   hint="use a non-empty string other than '__metadata__'")
        if isinstance(arr, np.generic):      # a numpy scalar is a 0-d weight
            arr = np.asarray(arr)
        if not isinstance(arr, np.ndarray):
            raise UnsupportedError(f"weight {name!r} is a {type(arr).__name__}, not a numpy array",
                                   hint="convert it with np.asarray first")
        if arr.dtype.name not in _SUPPORTED_NAMES:
            raise UnsupportedError(f"weight {name!r} has dtype {arr.dtype}, which a .kym file cannot hold",
                                   hint=f"supported: {', '.join(supported_dtypes())}")
        # safetensors.numpy reads the raw buffer from the data pointer: it must be C-contiguous.
        # (np.ascontiguousarray would turn a 0-d array into shape (1,).)
        ready[name] = arr if arr.flags.c_contiguous else arr.copy(order="C")
    return safetensors.numpy.save(ready)


def decode_weights(data: bytes) -> dict[str, np.ndarray]:
    """Parse safetensors bytes; ValueError (with the reason) when they are malformed."""
    try:
        entries = safetensors.deserialize(data)
    except Exception as e:  # safetensors raises its own SafetensorError, not a ValueError
        raise ValueError(str(e)) from None
    out = {}
    for name, entry in entries:
        dtype = _CODES.get(entry["dtype"])
        if dtype is None:
            raise ValueError(f"weight {name!r} has type code {entry['dtype']!r}, which kaiyuan does not read")
        # deserialize hands out a fresh bytearray per tensor, so the array is writable and owns it.
        out[name] = np.frombuffer(entry["data"], dtype=dtype).reshape(entry["shape"])
    return out
