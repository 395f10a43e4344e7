"""Run hand-written `ky` IR on the interp backend, the way the runtime does: stages, then load,
then launch with PointerArg/ScalarArg built from numpy arrays and Python numbers."""

from __future__ import annotations

import numpy as np

from kaiyuan.backends.interp import InterpBackend, InterpCompiler
from kaiyuan.ir.text import parse_module
from kaiyuan.runtime.backend import PointerArg, ScalarArg  # noqa: F401  (re-exported for tests)
from kaiyuan.runtime.dtypes import dtype as ky_dtype, int32, float32

DEVICE = InterpBackend().device(0)


def module(body: str, params: str, name: str = "k") -> str:
    return ('builtin.module attributes {ky.version = "0.1"} {\n'
            f"  func.func @{name}({params}) {{\n{body}\n    func.return\n  }}\n}}\n")


def compile_ir(text: str):
    compiler = InterpCompiler()
    meta = {"name": "k", "arg_types": [], "constants": {}}
    artifact = parse_module(text)
    for stage in compiler.stages({}):
        artifact = stage.run(artifact, meta)
    assert isinstance(artifact, bytes)
    return compiler.load(artifact, meta)


def byte_bounds(a: np.ndarray):
    return np.lib.array_utils.byte_bounds(a) if hasattr(np.lib, "array_utils") else np.byte_bounds(a)


def arg(a):
    if isinstance(a, (PointerArg, ScalarArg)):
        return a
    if isinstance(a, np.ndarray):
        buf = DEVICE.allocator.wrap_host(a)
        return PointerArg(buf, a.ctypes.data - byte_bounds(a)[0], ky_dtype(a.dtype))
    if isinstance(a, float):
        return ScalarArg(a, float32)
    return ScalarArg(a, int32)


def run(text: str, grid, *args):
    grid = tuple(grid) + (1,) * (3 - len(grid))
    compile_ir(text).launch(grid, [arg(a) for a in args])
