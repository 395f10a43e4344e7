"""Drop-in shim: run Triton kernels on kaiyuan by changing only the imports.

    import kaiyuan.triton as triton
    import kaiyuan.triton.language as tl

gives `triton.jit`, `triton.cdiv`, `triton.next_power_of_2`, `triton.Config`, `triton.autotune`,
`triton.heuristics`, `triton.testing.do_bench`, and `tl.*` (kaiyuan.language under Triton's names).
"""

from ..compiler.autotune import Config, autotune, heuristics
from ..compiler.jit import JITFunction, jit
from ..runtime.errors import CompilationError as CompilationError
from . import language, testing


def cdiv(x: int, y: int) -> int:
    return (x + y - 1) // y


def next_power_of_2(n: int) -> int:
    n = int(n)
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


__all__ = ["Config", "JITFunction", "autotune", "cdiv", "heuristics", "jit", "language", "next_power_of_2", "testing"]
