"""Sessions and .kym files: what `kaiyuan compile` writes and what a session loads back.

A .kym holds the imported graph IR (before specialisation, so any input shape still works), the
weights, and as artefacts the compiled kernels the plans for the compiled shapes use: each is a
disk-cache entry of the kernel compiler (binary, stage texts, metadata) under its cache key. On
load the artefacts go back into the kernel cache, so the first run compiles nothing; with
`trust_artefacts=False` (CLI `--rebuild`) they are ignored and every kernel is compiled again
from the IR, which is what files from untrusted sources should get: a compiled kernel is native
code that runs in the loading process.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..compiler.cache import cache_dir, install, recording
from .kym import load_kym, save_kym
from .model import GraphModel


def _io(values) -> list[dict]:
    return [{"name": v.name, "dtype": np.dtype(v.dtype).name,
             "shape": [d if isinstance(d, (int, str)) else "?" for d in (v.shape or ())]} for v in values]


def compile_to_kym(session, path, shapes_list: list[dict], overwrite: bool = False) -> dict:
    """Build (and run once on zeros) the plan for each shape set, then write the .kym with the
    kernels those plans use. Returns a summary {shapes: plan report}."""
    reports = {}
    with recording() as kernels:
        for shapes in shapes_list:
            plan = session.plan_for(shapes)
            feeds = {n: np.zeros(s, dtype=_dtype_of(session, n)) for n, s in shapes.items()}
            with session.device:
                plan.run(feeds)  # kernels compile on first launch
            reports[_key(shapes)] = plan.report()
    artefacts = {}
    for key, (binary, asm, kinds, meta) in kernels.items():
        texts = {name: asm[name] for name, kind in kinds if kind != "binary" and isinstance(asm.get(name), str)}
        artefacts[key] = (binary, {"kinds": kinds, "meta": meta, "asm": texts})
    # the autotuner's choices (per kernel, shape class and machine): without them a new process
    # would tune again, compiling every candidate configuration
    for table in sorted((cache_dir() / "autotune").glob("*.json")):
        artefacts["autotune." + table.name] = (table.read_bytes(), {"kind": "autotune", "file": table.name})
    model = session.model
    save_kym(path, ir_text=model.text(), weights=model.weights, inputs=_io(model.inputs), outputs=_io(model.outputs),
             plan={"reports": reports}, artefacts=artefacts, target=session.device.name,
             shapes=[{n: list(s) for n, s in shapes.items()} for shapes in shapes_list], overwrite=overwrite)
    return reports


def load_model(path, session, trust_artefacts: bool = True):
    """(GraphModel, {}) from a .kym; trusted artefacts go into the kernel cache."""
    kym = load_kym(path, trust_artefacts=trust_artefacts)
    for key, (binary, info) in kym.artefacts.items():
        if info.get("kind") == "autotune":
            _install_tuning(info["file"], binary)
            continue
        asm = dict(info.get("asm", {}))
        for name, kind in info["kinds"]:
            if kind == "binary":
                asm[name] = binary
        install(key, binary, asm, info["kinds"], info["meta"])
    model = GraphModel.from_text(kym.ir_text, kym.weights, filename=str(path))
    session.kym_manifest = kym.manifest
    return model, {}


def _install_tuning(name: str, data: bytes) -> None:
    """Put a stored autotune table into the cache unless one is there (local tuning wins; entries
    carry their machine's fingerprint, so another machine's choices are never used)."""
    folder = cache_dir() / "autotune"
    target = folder / Path(name).name
    if target.exists():
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
    except OSError:
        pass  # an unwritable cache means tuning again, never a wrong answer


def _dtype_of(session, name: str) -> np.dtype:
    return next(np.dtype(v.dtype) for v in session.model.inputs if v.name == name)


def _key(shapes: dict) -> str:
    return ",".join(f"{n}={'x'.join(map(str, s))}" for n, s in sorted(shapes.items()))
