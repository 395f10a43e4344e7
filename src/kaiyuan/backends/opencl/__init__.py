"""kaiyuan's opencl backend: `ky` IR → OpenCL C (shared SIMT emitter) → pyopencl, on any OpenCL
1.2+ device; in CI on PoCL's CPU device (pip package pocl-binary-distribution)."""

from .backend import OpenCLAllocator, OpenCLBackend, OpenCLDevice
from .compiler import OpenCLCompiler, OpenCLProgram

__all__ = ["OpenCLAllocator", "OpenCLBackend", "OpenCLCompiler", "OpenCLDevice", "OpenCLProgram"]
