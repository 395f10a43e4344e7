"""vcpu's compiler: kaiyuan's cpu stages, one stage of our own, and our own target string.

    1 ky      ir      (cpu) verify the kernel's IR
    2 ky-cpu  ir      (cpu) every op is one the C emitter supports
    3 c       text    (cpu) the C translation unit
    4 vcpu-c  text    (ours) the C pinned to vcpu's 128-bit vector path, with a provenance header
    5 so      binary  (cpu) the shared object; `load` is the cpu's (ctypes)

Wrapping means asking the inner compiler for its stages and splicing ours in by name, so the
cpu backend can change how it gets to C without breaking us. `target = "vcpu"` and our own
`toolchain_version()` give vcpu kernels cache entries of their own: a vcpu binary (generic
vectors) is never handed to the cpu device, nor the other way round.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import kaiyuan as ky
import kaiyuan.backends.cpu
from kaiyuan.backends.cpu import CpuCompiler   # the compiler this backend wraps

VERSION = "vcpu-1"


def pin_vector_path(source: str, meta: dict) -> str:
    """4. vcpu-c: the cpu C's dot micro-kernels pick their vector ISA with #if; KY_ISA_GENERIC
    selects the portable 16-byte GNU-vector path, matching the 128 bits our Capabilities claim."""
    header = (f"/* kaiyuan-vcpu {VERSION}: kernel {meta.get('name', '?')} from {meta.get('source', '?')} */\n"
              "#ifndef KY_ISA_GENERIC\n#define KY_ISA_GENERIC 1\n#endif\n")
    return header + source


class VcpuCompiler(ky.Compiler):
    target = "vcpu"

    def __init__(self):
        self.inner = CpuCompiler()

    def stages(self, options: dict) -> list[ky.Stage]:
        inner = self.inner.stages(options)
        names = [s.name for s in inner]
        if "c" not in names:  # fail loudly if the wrapped pipeline changes shape
            raise ky.ToolchainError(f"the cpu pipeline has no 'c' stage (it has {names})",
                                    hint="kaiyuan-vcpu needs updating for this kaiyuan version")
        at = names.index("c") + 1
        return [*inner[:at], ky.Stage("vcpu-c", "text", pin_vector_path), *inner[at:]]

    def load(self, binary: bytes, meta: dict) -> ky.Program:
        return self.inner.load(binary, meta)

    def toolchain_version(self) -> str:
        """Everything that changes our binaries: our version, the cpu toolchain (compiler, flags),
        and the source of the cpu code generator we call (kaiyuan hashes only *our* folder)."""
        return f"{VERSION} | {self.inner.toolchain_version()} | cpu-src {_cpu_source_hash()}"


@functools.cache
def _cpu_source_hash() -> str:
    h = hashlib.sha256()
    for path in sorted(Path(kaiyuan.backends.cpu.__file__).parent.iterdir()):
        if path.suffix in (".py", ".h"):
            h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:16]
