"""The shared SIMT code generator: one `ky` function → C-family source for a SIMT machine.

Entry point, for backends (OpenCL, CUDA, ...):

    from kaiyuan.compiler.simt import Dialect, SimtSource, emit_simt
    src: SimtSource = emit_simt(func_op, dialect, lanes)

- `func_op`: the module's `func.func` (check it first with `simt.check_supported(func_op, name)`).
- `dialect`: a `Dialect` (dialect.py) giving the spellings of the target language.
- `lanes`: L, the work-items / threads of one program; a power of two, >= 1. Launch the kernel
  with ONE work-group / block of L lanes (dimension 0) per program: global size
  (gx * L, gy, gz), local size (L, 1, 1) in OpenCL terms; grid (gx, gy, gz), block (L, 1, 1) in CUDA's.

The result `SimtSource`:
  source       the translation unit (dialect prelude + shared prelude + one kernel)
  kernel_name  the kernel's symbol
  lanes        L, as given
  local_bytes  bytes of local/shared memory the kernel declares statically
  asserts      [(file:line, message)], indexed by the assert slot's op field
  params       one entry per IR argument, in order: ("ptr", ir_type, elem ctype) or
               ("scalar", ir_type, param ctype); a pointer takes the kernel parameters
               `dialect.pointer_params(k, ctype)`, a scalar one parameter of the param ctype
               (f16/bf16 scalars travel as their uint16_t bits, i1 as uint8_t)
  assert_slot  True when the kernel takes one more pointer parameter after the arguments, with
               k = len(params) and ctype int32_t: 4 int32 [op, px, py, pz]. The host sets op to
               -1 before the launch; a failed `ky.assert` writes its index, and the program id,
               (first failure wins). The host raises DeviceAssertError from `asserts[op]`.

How a program maps onto lanes (emit.py has the details): scalar values are uniform (every lane
computes them); element-wise tile ops fuse into loops `for (i = lane; i < N; i += L)`; tiles read
by other lanes (reduce/dot/scan operands, views of computed values, loop-carried tiles) live in
local memory, the others in per-lane private arrays; barriers separate producers and consumers.
"""

from .dialect import Dialect
from .source import SimtSource

__all__ = ["Dialect", "SimtSource", "emit_simt", "check_supported"]


def emit_simt(func_op, dialect: Dialect, lanes: int) -> SimtSource:
    """C-family source of the kernel `func_op` for `dialect`, with `lanes` lanes per program."""
    from .emit import SimtEmitter

    return SimtEmitter(func_op, dialect, lanes).emit()


def check_supported(func_op, backend: str, float64: bool = True) -> None:
    """UnsupportedError (naming the op and the user's line) for an op the SIMT emitter lacks,
    or for float64 values when `float64` is False."""
    from .support import check_supported as check

    check(func_op, backend, float64)
