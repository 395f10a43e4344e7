"""A loaded kernel: the .so opened with ctypes, launched with one flat array of 64-bit words.

Launch cost is kept to a few microseconds: argument converters are chosen once at load time,
a buffer's address is cached per numpy handle, and the C side unpacks the words; the scheduler
(launch.c, one shared object for all kernels) runs the grid through the kernel's `ky_range`
(OpenMP only when it has more than one program). Out-of-bounds accesses are NOT checked on
cpu — the interp backend is the checked twin. A failed `ky.assert` is recorded in the .so's error
slot and raised here as DeviceAssertError with the kernel's file:line, program id and message.
"""

from __future__ import annotations

import ctypes
import struct

import ml_dtypes
import numpy as np

from ...runtime.backend import PointerArg, Program
from ...runtime.errors import ArgumentError, DeviceAssertError, LaunchError
from . import launch as _scheduler
from . import toolchain

_F32, _F64 = struct.Struct("<f"), struct.Struct("<d")
_ADDR: dict[int, tuple[object, int]] = {}


def _address(buf) -> int:
    if buf.address is not None:
        return buf.address
    h = buf.handle
    hit = _ADDR.get(id(h))
    if hit is not None and hit[0] is h:
        return hit[1]
    if h is None:
        raise ArgumentError("kernel argument buffer was freed")
    addr = h.ctypes.data
    if len(_ADDR) > 4096:
        _ADDR.clear()
    _ADDR[id(h)] = (h, addr)
    return addr


def _converter(ir_type: str):
    """KernelArg → the 64-bit word the C launcher unpacks."""
    if ir_type.startswith("!ky.ptr"):
        def ptr(a):
            if type(a) is not PointerArg:
                raise ArgumentError(f"expected a pointer argument for {ir_type}, got {a!r}")
            return _address(a.buffer) + a.offset
        return ptr
    if ir_type == "f32":
        return lambda a: int.from_bytes(_F32.pack(a.value), "little")
    if ir_type == "f64":
        return lambda a: int.from_bytes(_F64.pack(a.value), "little")
    if ir_type == "f16":
        return lambda a: int(np.array(a.value, np.float16).view(np.uint16))
    if ir_type == "bf16":
        return lambda a: int(np.array(a.value, ml_dtypes.bfloat16).view(np.uint16))
    mask = (1 << int(ir_type[1:])) - 1
    return lambda a: int(a.value) & mask


class CpuProgram(Program):
    def __init__(self, binary: bytes, meta: dict):
        self.lib = toolchain.load_library(binary)
        self.name = meta.get("name", "kernel")
        lib = self.lib
        lib.ky_signature.restype = ctypes.c_char_p
        lib.ky_assert_text.restype = ctypes.c_char_p
        lib.ky_assert_text.argtypes = [ctypes.c_int64]
        lib.ky_error_pid.restype = ctypes.c_int64
        lib.ky_error_pid.argtypes = [ctypes.c_int64]
        sig = lib.ky_signature().decode()
        self.arg_types = sig.split(";") if sig else []
        self._convert = [_converter(t) for t in self.arg_types]
        self._words = ctypes.c_uint64 * max(1, len(self.arg_types))
        # launch.c runs the programs through these two (ky_run_one, ky_run_list)
        self._range = ctypes.cast(lib.ky_range, ctypes.c_void_p).value
        self._slot = ctypes.cast(lib.ky_error_slot, ctypes.c_void_p).value
        self._run = _scheduler.library().ky_run_one

    def launch(self, grid, args) -> None:
        if len(args) != len(self._convert):
            raise ArgumentError(f"kernel {self.name} takes {len(self._convert)} arguments, got {len(args)}")
        try:
            words = self._words(*[c(a) for c, a in zip(self._convert, args)])
        except (AttributeError, TypeError, ValueError) as e:
            raise ArgumentError(f"bad argument for kernel {self.name}: {e}") from None
        gx, gy, gz = grid
        if gx <= 0 or gy <= 0 or gz <= 0:
            if gx == 0 or gy == 0 or gz == 0:
                return
            raise LaunchError(f"grid {tuple(grid)} must be positive")
        err = self._run(self._range, self._slot, words, gx, gy, gz)
        if err >= 0:
            self._raise_assert(err)

    def bind(self, grid, args):
        """The launch with its argument words converted once: replaying costs one C call."""
        words = self._words(*[c(a) for c, a in zip(self._convert, args)])
        run, rng, slot, (gx, gy, gz) = self._run, self._range, self._slot, grid

        def replay():
            err = run(rng, slot, words, gx, gy, gz)
            if err >= 0:
                self._raise_assert(err)

        return replay

    @classmethod
    def bind_list(cls, launches):
        """Launches of cpu programs replayed by one C call (`ky_run_list`, launch.c): one OpenMP
        region for the whole list, with a barrier between launches, instead of one region (and
        one wake-up of the worker threads) per launch."""
        words = [l.program._words(*[c(a) for c, a in zip(l.program._convert, l.args)]) for l in launches]
        n = len(launches)
        ranges = (ctypes.c_void_p * n)(*[l.program._range for l in launches])
        slots = (ctypes.c_void_p * n)(*[l.program._slot for l in launches])
        args = (ctypes.c_void_p * n)(*[ctypes.addressof(w) for w in words])
        grids = (ctypes.c_int64 * (3 * n))(*[g for l in launches for g in l.grid])
        failed = ctypes.c_int64(-1)
        run = _scheduler.library().ky_run_list
        refs = (words, ranges, slots, args, grids, failed)  # kept alive by the closure
        programs = [l.program for l in launches]  # not the launches: their buffers may be reused

        def replay():
            err = run(n, refs[1], refs[2], refs[3], refs[4], ctypes.byref(failed))
            if err >= 0:
                try:
                    programs[failed.value]._raise_assert(err)
                except DeviceAssertError as e:
                    e.launch_index = failed.value
                    raise

        return replay

    def _raise_assert(self, k: int) -> None:
        loc, _, msg = self.lib.ky_assert_text(k).decode("utf-8", "replace").partition("\x1f")
        pid = tuple(self.lib.ky_error_pid(a) for a in range(3))
        raise DeviceAssertError(f"device assertion failed in program {pid}: {msg}",
                                loc=None if loc == "<unknown>" else loc)
