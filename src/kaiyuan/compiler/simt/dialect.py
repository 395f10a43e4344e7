"""The spelling of one SIMT C dialect (OpenCL C, CUDA C, ...): everything `emit_simt` writes that
differs between them.

The SIMT emitter (`kaiyuan.compiler.simt.emit`) writes C that is common to OpenCL C and CUDA C
(C99 expressions, `int32_t`-style type names, `_Bool`, GNU statement expressions, unions) and asks
a `Dialect` for every word that is not: how a kernel is declared, the address-space qualifiers,
local-memory declarations, the barrier, program and lane identity, atomics on global memory, the
names of math functions, how 16-bit floats are held, the text before the kernel.

A backend subclasses `Dialect`, fills the abstract hooks, and calls
`emit_simt(func_op, dialect, lanes)`. Hooks take and return C text (expressions, declarations or
lines). This interface is shared by several backends: add hooks with a default, never change
the meaning of an existing one.

Conventions the hooks can rely on:
  - C type names in arguments are the emitter's canonical names: `_Bool`, `int8_t` ... `int64_t`,
    `uint8_t` ... `uint64_t`, `float`, `double`, `ky_f16` and `ky_bf16` (16-bit float storage,
    see `half_native`); the prelude must make them all valid.
  - Lanes of one program are the work-items of ONE work-group / the threads of ONE block, along
    dimension 0 only; programs are the work-groups / blocks of a 3-D grid.
"""

from __future__ import annotations

from abc import ABC, abstractmethod


class Dialect(ABC):
    """One C dialect for SIMT devices. See the module docstring for the conventions."""

    #: Short name, used in messages ("opencl", "cuda").
    name: str = ""

    #: True when `ky_f16` is a native half type of the dialect with C conversions
    #: (`(float)h`, `(ky_f16)f` rounding to nearest even). False: `ky_f16` is 16-bit storage
    #: (`uint16_t`) and the emitter converts with the shared prelude's `ky_h2f` / `ky_f2h`.
    half_native: bool = False

    #: True when the device computes in `double` (cl_khr_fp64 / every CUDA device).
    float64: bool = True

    # ------------------------------------------------------------------ program text
    @abstractmethod
    def prelude(self) -> str:
        """Text placed before everything else: extension pragmas, includes, typedefs that make the
        canonical type names valid (`int32_t`, `_Bool`, `ky_f16`, `ky_bf16`, ...), and
        `KY_BITCAST(TD, TS, x)`, an expression reinterpreting the bits of `x` (type TS) as TD."""

    @abstractmethod
    def function_qualifier(self) -> str:
        """Qualifiers of a helper function callable from the kernel (`static inline`,
        `static __device__ __forceinline__`)."""

    @abstractmethod
    def kernel_signature(self, name: str, params: list[str]) -> str:
        """The kernel's declaration up to (not including) `{`:
        `__kernel void name(params)` / `extern "C" __global__ void name(params)`."""

    @abstractmethod
    def global_pointer(self, ctype: str) -> str:
        """The C type of a pointer to `ctype` in global (device) memory: `__global float *`."""

    @abstractmethod
    def pointer_params(self, k: int, ctype: str) -> tuple[list[str], list[str]]:
        """Kernel parameters that carry pointer argument `k` (elements of `ctype`), and the
        prologue lines that define the local `arg{k}` (a `global_pointer(ctype)`) from them.
        OpenCL passes a buffer and a byte offset (`__global char *arg0_base, ulong arg0_off`);
        CUDA passes the device address. The backend's Program sets the arguments in this order."""

    @abstractmethod
    def local_array(self, ctype: str, name: str, count: int) -> str:
        """Declaration of an array shared by the lanes of one program (statement, with `;`):
        `__local float a3[1024];` / `__shared__ float a3[1024];`. Emitted at the top of the
        kernel body (OpenCL requires it there)."""

    @abstractmethod
    def barrier(self) -> str:
        """A statement that waits for every lane of the program and orders their local AND
        global memory accesses: `barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);` /
        `__syncthreads();`. Only ever emitted where control flow is uniform."""

    # ------------------------------------------------------------------ identity
    @abstractmethod
    def program_id(self, axis: int) -> str:
        """int32 expression of the program's index along `axis` (0..2): `get_group_id(0)`."""

    @abstractmethod
    def num_programs(self, axis: int) -> str:
        """int32 expression of the grid's size along `axis`: `get_num_groups(0)`."""

    @abstractmethod
    def lane_id(self) -> str:
        """int32 expression of this lane's index in its program, `0 <= lane < lanes`."""

    # ------------------------------------------------------------------ atomics (global memory)
    @abstractmethod
    def atomic_cas(self, bits: int, ptr: str, cmp: str, val: str) -> str:
        """Expression: atomically `old = *ptr; if (old == cmp) *ptr = val;`, yielding `old`.
        `ptr` is a global pointer to `uint{bits}_t` (bits 32 or 64), cmp/val are `uint{bits}_t`.
        Every other atomic can be built from this one (the emitter's CAS loops)."""

    def atomic_rmw(self, kind: str, ctype: str, ptr: str, val: str) -> str | None:
        """Expression of a native atomic read-modify-write returning the old value, or None when
        the dialect has none for this (kind, ctype): the emitter then writes a CAS loop.
        kind: add, and, or, xor, xchg, max, min, umax, umin (integers; fadd for floats).
        `ptr` is a global pointer to `ctype`."""
        return None

    # ------------------------------------------------------------------ math and printing
    def math_function(self, fn: str, ctype: str) -> str:
        """The name of C math function `fn` (libm's double name: exp, fmod, fabs, pow, fma, ...)
        for arguments of type `ctype` ("float" or "double"). Default: C99's (`expf` for float);
        OpenCL C overloads the plain name."""
        return fn + ("f" if ctype == "float" else "")

    def printf_int64(self) -> tuple[str, str]:
        """printf conversion and the cast for a 64-bit integer: ("%lld", "(long long)")."""
        return "%lld", "(long long)"

    def printf_prologue(self) -> str:
        """Statement run after a program's printf calls (a flush, or nothing)."""
        return ""
