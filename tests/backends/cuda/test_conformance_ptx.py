"""Every kernel the conformance suite launches compiles to PTX for sm_90 through NVRTC.

The suite (tests/backends/test_*.py, unchanged) runs in a subprocess on one extra device,
`cudaptx` (ptx_twin.py): each kernel specialisation is compiled by the cuda backend's offline
compiler, then run on interp so the suite's assertions hold and every later launch happens too.
This is how CUDA code generation is checked on a machine without a GPU; on a GPU the suite runs
on the `cuda` device itself. A fresh cache directory makes every kernel compile.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


from ._nvrtc import requires_nvrtc

ROOT = Path(__file__).resolve().parents[3]
pytestmark = requires_nvrtc


def _run_suite(tmp_path: Path) -> tuple[subprocess.CompletedProcess, list[dict]]:
    log = tmp_path / "ptx.jsonl"
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests" / "backends").glob("test_*.py"))
    env = {**os.environ, "KAIYUAN_CACHE_DIR": str(tmp_path / "cache"), "KAIYUAN_PTX_LOG": str(log),
           "KAIYUAN_TEST_DEVICES": "cudaptx"}
    env.pop("KAIYUAN_DUMP", None)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "tests.backends.cuda.ptx_twin",
                           "-p", "no:cacheprovider", "-k", "cudaptx", *files],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    entries = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return proc, entries


def test_every_conformance_kernel_compiles_to_ptx(tmp_path):
    proc, entries = _run_suite(tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert len(entries) >= 100, f"only {len(entries)} kernels were compiled: {proc.stdout[-2000:]}"
    failed = [f"{e['name']} {e['arg_types']} {e['constants']}: {e['error']}" for e in entries if not e["ok"]]
    assert not failed, f"{len(failed)} of {len(entries)} kernels failed:\n" + "\n".join(failed[:20])
    assert all(e["entry"] and e["binary"] in ("ptx", "elf") for e in entries), "a PTX without its .entry, or no binary"
    ptx_lines = sum(e["lines"]["ptx"] for e in entries)
    seconds = sum(e["seconds"] for e in entries)
    print(f"\n{len(entries)} conformance kernels -> PTX: {ptx_lines} lines (max "
          f"{max(e['lines']['ptx'] for e in entries)}), {seconds:.1f} s in the cuda stages "
          f"({1000 * seconds / len(entries):.0f} ms per kernel)")
