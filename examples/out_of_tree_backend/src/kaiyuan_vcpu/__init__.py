"""kaiyuan-vcpu: an example of a kaiyuan backend shipped as a separate pip package.

It registers the device `vcpu` under the `kaiyuan.backends` entry-point group. The device runs
kernels through kaiyuan's own cpu compiler (a vendor whose chip speaks C, or LLVM, or any
language an existing backend emits, starts the same way: wrap that compiler), but everything a
vendor owns is its own:

    allocator.py  VcpuAllocator -- device memory with a capacity, OutOfMemoryError past it
    compiler.py   VcpuCompiler  -- the cpu stages plus one of its own, its own target string
    backend.py    VcpuDevice    -- capability flags (a 128-bit vector unit), properties
                  VcpuBackend   -- availability and the device list

It uses only kaiyuan's public API (`kaiyuan.Backend`, `Device`, `Allocator`, `Compiler`, `Stage`,
`Capabilities`, `Buffer`, the errors) plus `kaiyuan.backends.cpu.CpuCompiler`, the compiler
it wraps. See README.md and kaiyuan's docs/backends.md.
"""

from .allocator import VcpuAllocator
from .backend import VcpuBackend, VcpuDevice
from .compiler import VcpuCompiler

__all__ = ["VcpuAllocator", "VcpuBackend", "VcpuCompiler", "VcpuDevice"]
