"""The interp backend: runs `ky` IR with numpy, one program after another.

It is kaiyuan's executable specification of the IR (docs/ir.md) and its twin
debugger: every load, store and atomic is bounds-checked and reports the user's kernel line and
the program id; `device_print` and `device_assert` work as written.

    backend.py    InterpBackend, InterpDevice (host memory, HostAllocator)
    compiler.py   InterpCompiler: stages ky -> bin (IR text), load -> InterpProgram
    program.py    InterpProgram: binds launch arguments, runs the grid
    lowering.py   turns the func body into a list of Python closures over value slots
    registry.py   op name -> closure builder table
    irtypes.py    IR types -> numpy dtypes, value conversions
    memory.py     pointer values and bounds-checked load/store/atomics
    arith_ops.py, math_ops.py, tile_ops.py, memory_ops.py, control_ops.py, debug_ops.py:
                  the builders, one family of ops per file
"""

from .backend import InterpBackend, InterpDevice
from .compiler import InterpCompiler
from .program import InterpProgram

__all__ = ["InterpBackend", "InterpDevice", "InterpCompiler", "InterpProgram"]
