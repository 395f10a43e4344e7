"""The launch scheduler (launch.c): one shared object per toolchain, built on first use.

Every cpu launch runs through it: `CpuProgram.launch` and `bind` call `ky_run_one`, `bind_list`
calls `ky_run_list`, each with the kernel's own `ky_range` and `ky_error_slot` as function
pointers. It used to be part of every kernel's C (the prelude), where gcc spent ~0.1 s of each
kernel's compile on it (0.16 s for the prelude alone, 0.06 s without it); now it is compiled
once and kept in the disk cache like a kernel (keyed by its source and the toolchain).
"""

from __future__ import annotations

import ctypes
import functools
import os

from ...compiler.cache import DiskCache, cache_key
from . import toolchain

SOURCE = open(os.path.join(os.path.dirname(__file__), "launch.c")).read()


@functools.lru_cache(maxsize=1)
def library() -> ctypes.CDLL:
    """The loaded scheduler, with its two entry points typed."""
    key = cache_key(SOURCE, "cpu-launch", {}, toolchain.version_string())
    cache = DiskCache()
    hit = cache.get(key)
    if hit is not None:
        binary = hit[0]
    else:
        binary = toolchain.compile_c(SOURCE, name="ky_launch_lib")
        cache.put(key, binary, {"c": SOURCE}, [("c", "text")], {"name": "ky_launch_lib"})
    lib = toolchain.load_library(binary, "kaiyuan-launch-")
    lib.ky_run_one.restype = ctypes.c_int64
    lib.ky_run_one.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p] + [ctypes.c_int64] * 3
    lib.ky_run_list.restype = ctypes.c_int64
    lib.ky_run_list.argtypes = [ctypes.c_int64] + [ctypes.c_void_p] * 5
    return lib
