"""kaiyuan's cuda backend: `ky` IR → CUDA C (shared SIMT emitter) → PTX/cubin (NVRTC) → CUDA driver.

Importing this package needs neither cuda-bindings nor a GPU: the driver and NVRTC are loaded on
first use, and `CudaBackend.unavailable_reason()` says what is missing.
"""

from .backend import CudaBackend, CudaDevice

__all__ = ["CudaBackend", "CudaDevice"]
