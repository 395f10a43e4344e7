"""pytest plugin: the device `cudaptx`, a twin that compiles every kernel for an NVIDIA GPU and runs
it on the interp backend.

    pytest tests/backends -p tests.backends.cuda.ptx_twin -k cudaptx

The conformance suite runs on every available device, unchanged; with this plugin one more
device is available. Each kernel specialisation the suite launches there goes, first, through
the cuda backend's OFFLINE compiler (`ky.compile`'s "cuda:sm_90" target, found through the
registry: ky → ky-simt → cuda → ptx → cubin, NVRTC included) and is then run by interp, so the
suite's own assertions pass and every later launch of the test still happens and is compiled.
Each compilation appends one JSON line to $KAIYUAN_PTX_LOG: kernel name, the stages' sizes and
time, or the error. test_conformance_ptx.py runs this and checks the log.

The target is "cuda:compute_90" (PTX only, what the driver JIT-compiles for any GPU of sm_90 or
newer): ptxas would double the time per kernel, and test_offline.py checks cubins for sm_80 and
sm_90. KAIYUAN_PTX_ARCH=sm_90 checks a cubin for every kernel too. The compilations run on a
worker thread (NVRTC releases the GIL) while interp runs the tests; the session waits for the
last one before it ends.

Nothing here is a branch in kaiyuan's source: it is an ordinary backend registered by a plugin.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import kaiyuan as ky
from kaiyuan.backends.host import HostAllocator
from kaiyuan.ir.text import parse_module, print_module, verify_module
from kaiyuan.runtime.backend import Backend, Compiler, Device, Stage
from kaiyuan.runtime.registry import compile_target

ARCH = os.environ.get("KAIYUAN_PTX_ARCH", "compute_90")


_WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cudaptx")


def _log(entry: dict) -> None:
    path = os.environ.get("KAIYUAN_PTX_LOG")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(entry) + "\n")


def _compile_for_cuda(module, meta):
    """Queue the cuda offline pipeline on a copy of the module (its outcome goes to the log)."""
    cuda = compile_target(f"cuda:{ARCH}").compiler
    _WORKER.submit(_run_cuda_stages, cuda, parse_module(print_module(module)), json.loads(json.dumps(meta, default=str)))
    return module


def _run_cuda_stages(cuda, artifact, cuda_meta) -> None:
    """The cuda stages, ky to cubin; the outcome goes to the log."""
    meta, sizes, t0 = cuda_meta, {}, time.perf_counter()
    entry = {"name": meta.get("name"), "arg_types": meta.get("arg_types"), "constants": meta.get("constants")}
    out = {}
    try:
        for stage in cuda.stages({}):
            artifact = out[stage.name] = stage.run(artifact, cuda_meta)
            if stage.kind != "ir":
                sizes[stage.name] = len(artifact.splitlines()) if isinstance(artifact, str) else len(artifact)
        info = cuda_meta["cuda"]
        entry.update(ok=True, lines=sizes, lanes=info["lanes"], shared=info["smem_bytes"],
                     source_sha=hashlib.sha256(out["cuda"].encode()).hexdigest()[:16],
                     entry=f".entry {info['kernel_name']}(" in out["ptx"],
                     binary="elf" if out["cubin"][:4] == b"\x7fELF" else "ptx" if out["cubin"][:1] == b"/" else "?")
    except Exception as e:  # recorded, not raised: the run goes on so every kernel is tried
        entry.update(ok=False, error=f"{type(e).__name__}: {e}"[:2000])
    entry["seconds"] = round(time.perf_counter() - t0, 4)
    _log(entry)


class TwinCompiler(Compiler):
    target = f"cudaptx-{ARCH}"

    def stages(self, options):
        return [Stage("ky", "ir", lambda m, meta: (verify_module(m), m)[1]),
                Stage("cuda-check", "ir", _compile_for_cuda),
                Stage("bin", "binary", lambda m, meta: print_module(m).encode())]

    def load(self, binary, meta):
        return ky.device("interp").compiler.load(binary, meta)

    def toolchain_version(self):
        return "twin-" + ky.device("interp").compiler.toolchain_version()


class TwinDevice(Device):
    @property
    def allocator(self):
        if not hasattr(self, "_alloc"):
            self._alloc = HostAllocator(self)
        return self._alloc

    @property
    def compiler(self):
        return TwinCompiler()

    @property
    def is_host(self):
        return True

    @property
    def is_reference(self):
        return True


class TwinBackend(Backend):
    name = "cudaptx"

    def unavailable_reason(self):
        return None

    def device(self, index=0):
        if not hasattr(self, "_dev"):
            self._dev = TwinDevice(self, 0, {"kind": f"compiles for cuda:{ARCH}, runs on interp"})
        return self._dev


def pytest_configure(config):
    ky.register_backend(TwinBackend())


def pytest_unconfigure(config):
    _WORKER.shutdown(wait=True)  # every queued kernel is compiled and logged before the run ends
