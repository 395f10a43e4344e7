"""kaiyuan.ir: the open IR (MLIR syntax on xDSL). `ky` dialect, text in and out, verification."""

from .arith_ext import Arith
from .ky import VERSION, Ky, PtrType
from .text import context, op_location, parse_module, print_module, verify_module

__all__ = ["Arith", "Ky", "PtrType", "VERSION", "context", "op_location", "parse_module", "print_module",
           "verify_module"]
