"""Element types: one table that maps kaiyuan's names to numpy (with ml_dtypes) and IR types.

Names follow Triton's signature strings ("fp32", "i32", "u8", "i1"); Python users may also say
"float32" etc. The IR is signless (MLIR's convention): unsigned types share the IR type of their
signed twin, and the frontend picks unsigned ops where the language type says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

from .errors import UnsupportedError


@dataclass(frozen=True)
class DType:
    name: str  # canonical short name, as in kernel signatures: "fp32"
    np: np.dtype  # numpy storage dtype
    ir: str  # MLIR element type text: "f32", "i8", ...
    kind: str  # "float" | "int" | "uint" | "bool"

    @property
    def itemsize(self) -> int:
        return self.np.itemsize

    @property
    def bits(self) -> int:
        return 1 if self.kind == "bool" else self.np.itemsize * 8

    @property
    def is_floating(self) -> bool:
        return self.kind == "float"

    @property
    def is_int(self) -> bool:
        return self.kind in ("int", "uint", "bool")

    @property
    def is_signed(self) -> bool:
        return self.kind == "int"

    def __repr__(self) -> str:
        return f"ky.{self.name}"


_TABLE = [
    DType("fp16", np.dtype(np.float16), "f16", "float"),
    DType("bf16", np.dtype(ml_dtypes.bfloat16), "bf16", "float"),
    DType("fp32", np.dtype(np.float32), "f32", "float"),
    DType("fp64", np.dtype(np.float64), "f64", "float"),
    DType("i1", np.dtype(np.bool_), "i1", "bool"),
    DType("i8", np.dtype(np.int8), "i8", "int"),
    DType("i16", np.dtype(np.int16), "i16", "int"),
    DType("i32", np.dtype(np.int32), "i32", "int"),
    DType("i64", np.dtype(np.int64), "i64", "int"),
    DType("u8", np.dtype(np.uint8), "i8", "uint"),
    DType("u16", np.dtype(np.uint16), "i16", "uint"),
    DType("u32", np.dtype(np.uint32), "i32", "uint"),
    DType("u64", np.dtype(np.uint64), "i64", "uint"),
]

BY_NAME: dict[str, DType] = {d.name: d for d in _TABLE}
_ALIASES = {
    "float16": "fp16", "half": "fp16", "bfloat16": "bf16", "float32": "fp32", "float": "fp32",
    "float64": "fp64", "double": "fp64", "bool": "i1", "int1": "i1", "int8": "i8",
    "int16": "i16", "int32": "i32", "int64": "i64", "uint8": "u8", "uint16": "u16",
    "uint32": "u32", "uint64": "u64",
}
_BY_NP = {d.np: d for d in _TABLE}

float16, bfloat16, float32, float64 = (BY_NAME[n] for n in ("fp16", "bf16", "fp32", "fp64"))
bool_, int8, int16, int32, int64 = (BY_NAME[n] for n in ("i1", "i8", "i16", "i32", "i64"))
uint8, uint16, uint32, uint64 = (BY_NAME[n] for n in ("u8", "u16", "u32", "u64"))


def dtype(x) -> DType:
    """Any dtype spelling (DType, name, numpy dtype, torch-style 'torch.float32') → DType."""
    if isinstance(x, DType):
        return x
    if isinstance(x, str):
        name = x.removeprefix("torch.").removeprefix("*")
        name = _ALIASES.get(name, name)
        if name in BY_NAME:
            return BY_NAME[name]
        raise UnsupportedError(
            f"unknown dtype {x!r}", hint=f"use one of {', '.join(BY_NAME)}"
        )
    try:
        npd = np.dtype(x)
    except TypeError:
        return dtype(str(x))
    if npd in _BY_NP:
        return _BY_NP[npd]
    raise UnsupportedError(
        f"dtype {npd} is not supported", hint=f"supported: {', '.join(BY_NAME)}"
    )
