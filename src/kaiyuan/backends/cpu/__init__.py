"""kaiyuan's cpu backend: `ky` IR → C → system C compiler (-O3 -march=native -fopenmp) → ctypes."""

import os

# libgomp's worker threads spin ~300k iterations after each parallel region by default. Beside
# another thread pool (numpy's OpenBLAS, torch's OpenMP) on few cores, the spinning threads
# take each other's cores: a 256^3 ky.ops.matmul followed by a numpy matmul measured 8 ms
# instead of 1 ms on 2 cores. 10k iterations keep back-to-back kaiyuan launches as fast as
# before (measured) and hand the cores back quickly. Read by libgomp when it is first loaded,
# i.e. at our first kernel; a value the user set wins.
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

from .backend import CpuBackend, CpuCompiler, CpuDevice  # noqa: E402
from .program import CpuProgram  # noqa: E402

__all__ = ["CpuBackend", "CpuCompiler", "CpuDevice", "CpuProgram"]
