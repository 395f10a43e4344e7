"""Helpers: compile hand-written `ky` IR through the cpu stages and launch it on numpy arrays."""

from __future__ import annotations

import numpy as np
import pytest

from kaiyuan.backends.cpu import CpuBackend
from kaiyuan.ir.text import parse_module
from kaiyuan.runtime import dtypes
from kaiyuan.runtime.backend import PointerArg, ScalarArg

BACKEND = CpuBackend()
if BACKEND.unavailable_reason():
    pytest.skip(f"cpu backend unavailable: {BACKEND.unavailable_reason()}", allow_module_level=True)


class Compiled:
    def __init__(self, text: str, name: str = "k"):
        self.device = BACKEND.device(0)
        compiler = self.device.compiler
        meta = {"name": name, "arg_types": [], "constants": {}}
        artifact = parse_module(text)
        self.asm = {}
        for stage in compiler.stages({}):
            artifact = stage.run(artifact, meta)
            self.asm[stage.name] = artifact
        self.program = compiler.load(artifact, meta)

    def args(self, *args):
        out = []
        alloc = self.device.allocator
        for a in args:
            if isinstance(a, np.ndarray):
                buf = alloc.wrap_host(a)
                lo = np.lib.array_utils.byte_bounds(a)[0]
                out.append(PointerArg(buf, a.ctypes.data - lo, dtypes.dtype(a.dtype)))
            else:
                value, dt = a
                out.append(ScalarArg(value, dtypes.dtype(dt)))
        return out

    def __call__(self, grid, *args):
        grid = tuple(grid) + (1,) * (3 - len(grid))
        self.program.launch(grid, self.args(*args))


def module(body: str, params: str, name: str = "k") -> str:
    """Wrap op lines in the module/func boilerplate."""
    return (f'builtin.module attributes {{ky.version = "0.1"}} {{\n  func.func @{name}({params}) {{\n'
            f"{body}\n    func.return\n  }}\n}}\n")


def offsets2d(name: str, m: int, n: int) -> str:
    """IR lines defining %{name}: tensor<mxnxi32> = i*n + j (row-major offsets), via
    make_range, expand_dims, broadcast, as the frontend emits them."""
    return f"""    %{name}_i = "ky.make_range"() <{{start = 0 : i32, end = {m} : i32}}> : () -> tensor<{m}xi32>
    %{name}_j = "ky.make_range"() <{{start = 0 : i32, end = {n} : i32}}> : () -> tensor<{n}xi32>
    %{name}_i2 = "ky.expand_dims"(%{name}_i) <{{axis = 1 : i32}}> : (tensor<{m}xi32>) -> tensor<{m}x1xi32>
    %{name}_j2 = "ky.expand_dims"(%{name}_j) <{{axis = 0 : i32}}> : (tensor<{n}xi32>) -> tensor<1x{n}xi32>
    %{name}_n = arith.constant {n} : i32
    %{name}_ns = "ky.splat"(%{name}_n) : (i32) -> tensor<{m}x1xi32>
    %{name}_ro = arith.muli %{name}_i2, %{name}_ns : tensor<{m}x1xi32>
    %{name}_rb = "ky.broadcast"(%{name}_ro) : (tensor<{m}x1xi32>) -> tensor<{m}x{n}xi32>
    %{name}_cb = "ky.broadcast"(%{name}_j2) : (tensor<1x{n}xi32>) -> tensor<{m}x{n}xi32>
    %{name} = arith.addi %{name}_rb, %{name}_cb : tensor<{m}x{n}xi32>"""


def ptrs(name: str, base: str, off: str, shape: str, elem: str) -> str:
    """%{name} = splat(%base) + %off : tensor<shape x !ky.ptr<elem>>"""
    pt = f"tensor<{shape}x!ky.ptr<{elem}>>"
    return f"""    %{name}_s = "ky.splat"(%{base}) : (!ky.ptr<{elem}>) -> {pt}
    %{name} = "ky.addptr"(%{name}_s, %{off}) : ({pt}, tensor<{shape}xi32>) -> {pt}"""


def load(name: str, p: str, shape: str, elem: str) -> str:
    return (f'    %{name} = "ky.load"(%{p}) <{{operandSegmentSizes = array<i32: 1, 0, 0>}}> : '
            f"(tensor<{shape}x!ky.ptr<{elem}>>) -> tensor<{shape}x{elem}>")


def store(p: str, v: str, shape: str, elem: str) -> str:
    return (f'    "ky.store"(%{p}, %{v}) <{{operandSegmentSizes = array<i32: 1, 1, 0>}}> : '
            f"(tensor<{shape}x!ky.ptr<{elem}>>, tensor<{shape}x{elem}>) -> ()")


def combiner(op: str, elem: str) -> str:
    return f"""({{
    ^bb0(%ca: {elem}, %cb: {elem}):
      %cz = {op} %ca, %cb : {elem}
      "ky.yield"(%cz) : ({elem}) -> ()
    }})"""
