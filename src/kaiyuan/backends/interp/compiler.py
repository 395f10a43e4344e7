"""InterpCompiler: the pipeline is just "verify the ky module" then "print it"; loading parses
the text back and lowers it to closures (program.py), so the cached binary is plain IR text."""

from __future__ import annotations

import numpy as np

from ...ir.text import parse_module, print_module, verify_module
from ...runtime.backend import Compiler, Program, Stage


def _verify(module, meta: dict):
    verify_module(module, filename=str(meta.get("name", "<ir>")) if meta else "<ir>")
    return module


def _to_binary(module, meta: dict) -> bytes:
    return print_module(module).encode("utf-8")


class InterpCompiler(Compiler):
    target = "interp"

    def stages(self, options: dict) -> list[Stage]:
        return [Stage("ky", "ir", _verify), Stage("bin", "binary", _to_binary)]

    def load(self, binary: bytes, meta: dict) -> Program:
        from .program import InterpProgram

        text = binary.decode("utf-8") if isinstance(binary, (bytes, bytearray)) else str(binary)
        return InterpProgram(parse_module(text), meta or {})

    def toolchain_version(self) -> str:
        return f"numpy-{np.__version__}"
