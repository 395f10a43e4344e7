"""The opencl compiler (`ky` → OpenCL C → program binary) and the loaded Program.

Stages:
    1. ky        the frontend's module, verified
    2. ky-simt   every op is one the SIMT emitter knows, f64 only where the device has
                 cl_khr_fp64; picks L, the lanes (work-items) of one program
    3. cl        OpenCL C text from the shared SIMT emitter (kaiyuan.compiler.simt)
    4. bin       the source, a NUL byte, and the program binary from clGetProgramInfo (PoCL: its
                 LLVM bitcode), so load() in a fresh process builds from the binary and falls
                 back to the source when the driver refuses it
A program is one work-group of L work-items: the launch enqueues NDRange (gx*L, gy, gz) with
local size (L, 1, 1). Pointer arguments travel as a buffer and a byte offset.
"""

from __future__ import annotations

import math
import threading

import ml_dtypes
import numpy as np

from ...ir.ky import shape_of
from ...ir.text import verify_module
from ...runtime.backend import Compiler, PointerArg, Program, Stage
from ...runtime.errors import ArgumentError, CompilationError, DeviceAssertError, LaunchError, UnsupportedError
from ...compiler.simt import check_supported, emit_simt
from .dialect import OpenCLDialect

OPTIONS = ["-cl-fp32-correctly-rounded-divide-sqrt"]   # IEEE division and sqrt, as the IR says
GPU_LANES = 128


def default_lanes(cl_device) -> int:
    """The most lanes a program gets. A CPU driver (PoCL) runs a work-group's work-items as one
    loop it vectorises: as many lanes as the float vector holds fill it, and more only add
    reduction steps. Other devices get GPU_LANES (4 warps / 2 wavefronts)."""
    cl = _cl()
    if cl_device.type & cl.device_type.CPU:
        return max(1, cl_device.preferred_vector_width_float)
    return GPU_LANES


def _func(module):
    return next(op for op in module.ops if op.name == "func.func")


def choose_lanes(func_op, cap: int) -> int:
    """L: the largest tile's element count rounded up to a power of two, at most `cap`."""
    biggest = max((math.prod(shape_of(v.type)) for op in func_op.walk() for v in op.results), default=1)
    lanes = 1
    while lanes < min(biggest, cap):
        lanes *= 2
    return lanes


class OpenCLCompiler(Compiler):
    def __init__(self, device):
        self.device = device
        d = device.cl_device
        ext = d.extensions.split()
        self.float64 = "cl_khr_fp64" in ext
        self.int64_atomics = "cl_khr_int64_base_atomics" in ext and "cl_khr_int64_extended_atomics" in ext
        self.target = f"opencl:{d.platform.name}:{d.name.strip()}"

    def toolchain_version(self) -> str:
        d = self.device.cl_device
        return f"{d.platform.version}|{d.driver_version}|{d.version}"

    def stages(self, options: dict) -> list[Stage]:
        d = self.device.cl_device
        cap = min(int(options.get("lanes", default_lanes(d))), d.max_work_group_size)

        def verify(module, meta):
            verify_module(module, filename=meta.get("name", "<ir>"))
            return module

        def prepare(module, meta):
            check_supported(_func(module), "opencl", self.float64)
            meta["lanes"] = choose_lanes(_func(module), cap)
            return module

        def emit(module, meta):
            dialect = OpenCLDialect(meta["lanes"], self.float64, self.int64_atomics)
            src = emit_simt(_func(module), dialect, meta["lanes"])
            limit = self.device.cl_device.local_mem_size
            if src.local_bytes > limit:
                raise UnsupportedError(f"kernel {meta.get('name')} needs {src.local_bytes} bytes of local memory; "
                                       f"{self.device.name} has {limit}", loc=meta.get("source"),
                                       hint="use smaller tiles (BLOCK sizes)")
            meta["simt"] = src.to_meta()
            return src.source

        def build(source, meta):
            program = self._build_source(source, meta.get("name", "kernel"))
            binary = b""
            try:
                binary = program.get_info(_cl().program_info.BINARIES)[0] or b""
            except Exception:   # a device without program binaries: the source is the artefact
                pass
            return source.encode() + b"\0" + bytes(binary)

        return [Stage("ky", "ir", verify), Stage("ky-simt", "ir", prepare), Stage("cl", "text", emit),
                Stage("bin", "binary", build)]

    def _build_source(self, source: str, name: str):
        cl = _cl()
        try:
            return cl.Program(self.device.context, source).build(options=OPTIONS)
        except cl.Error as e:
            raise CompilationError(f"the OpenCL compiler rejected kernel {name}: {e}",
                                   hint="this is a kaiyuan bug; report it with KAIYUAN_DUMP output") from None

    def load(self, binary: bytes, meta: dict) -> Program:
        cl = _cl()
        source, _, prog = binary.partition(b"\0")
        program = None
        if prog:
            try:
                program = cl.Program(self.device.context, [self.device.cl_device], [prog]).build(options=OPTIONS)
            except cl.Error:
                program = None          # e.g. a driver update: rebuild from the source
        if program is None:
            program = self._build_source(source.decode(), meta.get("name", "kernel"))
        return OpenCLProgram(self.device, program, meta)


def _cl():
    import pyopencl as cl

    return cl


def _scalar(ctype: str, ir_type: str, value):
    """A scalar kernel argument as the numpy value of its OpenCL parameter type."""
    if ctype == "float":
        return np.float32(value)
    if ctype == "double":
        return np.float64(value)
    if ctype == "uint16_t" and ir_type in ("f16", "bf16"):
        t = np.float16 if ir_type == "f16" else ml_dtypes.bfloat16
        return np.array(value, t).view(np.uint16)[()]
    if ctype == "uint8_t":
        return np.uint8(int(value) & 1)
    bits = int(ctype[3:-2])
    v = int(value) & ((1 << bits) - 1)
    return np.array(v, f"u{bits // 8}").view(f"i{bits // 8}")[()]


class OpenCLProgram(Program):
    def __init__(self, device, program, meta: dict):
        simt = meta["simt"]
        self.device, self.name = device, meta.get("name", "kernel")
        self.kernel = _cl().Kernel(program, simt["kernel_name"])
        self.lanes = simt["lanes"]
        self.params = [tuple(p) for p in simt["params"]]
        self.asserts = simt["asserts"]
        self.slot = None
        if simt["assert_slot"]:
            cl = _cl()
            self.slot = cl.Buffer(device.context, cl.mem_flags.READ_WRITE, 16)
        self.lock = threading.Lock()

    def _values(self, args) -> tuple[list, list]:
        if len(args) != len(self.params):
            raise ArgumentError(f"kernel {self.name} takes {len(self.params)} arguments, got {len(args)}")
        values, host = [], []
        for (kind, ir_type, ctype), a in zip(self.params, args):
            if kind == "ptr":
                if type(a) is not PointerArg or a.buffer.device is not self.device or a.buffer.handle is None:
                    raise ArgumentError(f"kernel {self.name}: expected a pointer on {self.device.name} for "
                                        f"{ir_type}, got {a!r}")
                values += [a.buffer.handle, np.uint64(a.offset)]
                if a.buffer.owner is not None:
                    host.append(a.buffer)
            else:
                values.append(_scalar(ctype, ir_type, a.value))
        if self.slot is not None:
            values += [self.slot, np.uint64(0)]
        return values, host

    def launch(self, grid, args) -> None:
        values, host = self._values(args)
        self._run(grid, values, host)

    def bind(self, grid, args):
        values, host = self._values(args)
        return lambda: self._run(grid, values, host)

    def _run(self, grid, values, host) -> None:
        cl, q = _cl(), self.device.queue
        gx, gy, gz = grid
        if min(grid) <= 0:
            if 0 in grid:
                return
            raise LaunchError(f"grid {tuple(grid)} must be positive")
        for b in host:                  # host → device: a mapped-for-write region is written back on unmap
            _sync(q, b, cl.map_flags.WRITE)
        if self.slot is not None:
            cl.enqueue_copy(q, self.slot, np.array([-1, 0, 0, 0], np.int32))
        with self.lock:
            self.kernel.set_args(*values)
            cl.enqueue_nd_range_kernel(q, self.kernel, (gx * self.lanes, gy, gz), (self.lanes, 1, 1))
        for b in host:                  # device → host: the numpy array holds the result
            _sync(q, b, cl.map_flags.READ)
        q.finish()
        if self.slot is not None:
            err = np.empty(4, np.int32)
            cl.enqueue_copy(q, err, self.slot)
            if err[0] >= 0:
                loc, msg = self.asserts[err[0]]
                raise DeviceAssertError(f"device assertion failed in program {tuple(int(x) for x in err[1:])}: {msg}",
                                        loc=None if loc == "<unknown>" else loc)


def _sync(queue, buffer, flags) -> None:
    if buffer.nbytes:
        mapped, _ = _cl().enqueue_map_buffer(queue, buffer.handle, flags, 0, (buffer.nbytes,), np.uint8)
        mapped.base.release(queue)
