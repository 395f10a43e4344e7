"""kaiyuan's cpu backend: `ky` IR → C → system C compiler (-O3 -march=native -fopenmp) → ctypes."""

from .backend import CpuBackend, CpuCompiler, CpuDevice
from .program import CpuProgram

__all__ = ["CpuBackend", "CpuCompiler", "CpuDevice", "CpuProgram"]
