"""kaiyuan.compiler: JIT, compile pipeline, disk cache, autotuning, target-independent passes."""

from .jit import JITFunction, compile, jit
from .pipeline import CompiledKernel

__all__ = ["JITFunction", "compile", "jit", "CompiledKernel"]
