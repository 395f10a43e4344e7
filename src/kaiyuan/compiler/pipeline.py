"""Compile a `ky` module for a device: simplify, then run the backend's named stages.

    1. simplify   -- CSE/DCE on the frontend's module (target-independent)
    2. cache      -- look the IR text up in the disk cache (key: IR, target, options, toolchain)
    3. stages     -- on a miss, each of the backend's stages in order; `asm[stage]` keeps its text
    4. load       -- the backend turns the binary into a launchable Program

`KAIYUAN_DUMP=dir` writes every stage of every compiled kernel as numbered files under
dir/<kernel>-<key8>/ (on cache hits too).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..ir.text import print_module
from ..runtime.backend import Device, Program
from ..runtime.errors import CompilationError, KaiyuanError
from .cache import DiskCache, backend_fingerprint, cache_key, record, write_stages
from .passes import simplify


@dataclass
class CompiledKernel:
    """A kernel compiled for one device and one specialisation."""

    name: str
    device: Device
    asm: dict  # stage name → text (IR, C, ...) or bytes (binary stages)
    meta: dict
    key: str
    program: Program | None = None
    stages: list = field(default_factory=list)  # [(name, kind)]

    def __repr__(self) -> str:
        return f"<CompiledKernel {self.name} on {self.device.name}: stages {list(self.asm)}>"


def compile_module(module, device: Device, meta: dict, options: dict | None = None) -> CompiledKernel:
    options = dict(options or {})
    compiler = device.compiler
    module = simplify(module)
    ir_text = print_module(module)
    stages = compiler.stages(options)
    kinds = [(s.name, s.kind) for s in stages]
    # The stages see `meta` (argument types, constants, divisibility): it is part of the key, or a
    # specialisation that differs only there (n % 16 == 0 or not) would get another's binary and meta.
    key = cache_key(ir_text, compiler.target, {"options": options, "meta": _jsonable(meta)},
                    compiler.toolchain_version() + backend_fingerprint(compiler))
    cache = DiskCache()
    hit = cache.get(key)
    if hit is not None:
        binary, asm, cached_meta = hit
        meta = {**meta, **cached_meta}
    else:
        binary, asm = _run_stages(stages, module, meta)
        cache.put(key, binary, asm, kinds, _jsonable(meta))
    record(key, binary, asm, kinds, _jsonable(meta))
    kernel = CompiledKernel(meta["name"], device, asm, meta, key, stages=kinds)
    dump = os.environ.get("KAIYUAN_DUMP")
    if dump:
        write_stages(Path(dump) / f"{meta['name']}-{key[:8]}", asm, kinds)
    kernel.program = compiler.load(binary, meta)
    return kernel


def _run_stages(stages, module, meta):
    asm: dict = {}
    artifact = module
    for stage in stages:
        try:
            artifact = stage.run(artifact, meta)
        except KaiyuanError:
            raise
        except Exception as e:
            raise CompilationError(f"stage {stage.name!r} failed: {type(e).__name__}: {e}",
                                   hint="this is a kaiyuan bug; please report it with KAIYUAN_DUMP output") from e
        asm[stage.name] = print_module(artifact) if stage.kind == "ir" else artifact
    if not stages or stages[-1].kind != "binary":
        raise CompilationError("the backend's last stage must produce a binary")
    return artifact, asm


def _jsonable(meta: dict) -> dict:
    return {k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool, list, dict, type(None)))}
