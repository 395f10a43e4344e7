"""The docs are executable: every ```python block in README.md and docs/*.md runs, and every
```mlir block in docs/ir.md parses (and prints back unchanged).

Each Python block is written to its own .py file in a fresh temporary directory and run there by
a fresh interpreter (the frontend reads kernel source with `inspect`, so kernels must live in a
real file; a fresh process keeps blocks from sharing devices, streams or registries), with
`KAIYUAN_CACHE_DIR` pointing into that directory. A block preceded by the line
`<!-- no-run -->` is a fragment and is skipped.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NO_RUN = "<!-- no-run -->"
FENCE = re.compile(r"^```(\w*)\s*$")


def doc_files() -> list[Path]:
    files = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
    return [f for f in files if f.is_file()]


def code_blocks(path: Path, lang: str) -> list[tuple[int, str]]:
    """(first line number, text) of each ```lang block not marked no-run."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m or not m.group(1):
            i += 1
            continue
        start, kind = i, m.group(1)
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        prev = next((lines[k].strip() for k in range(start - 1, -1, -1) if lines[k].strip()), "")
        if kind == lang and prev != NO_RUN:
            out.append((start + 2, "\n".join(lines[start + 1:j]) + "\n"))
        i = j + 1
    return out


def _cases(lang: str, files) -> list:
    return [pytest.param(f, line, text, id=f"{f.name}:{line}") for f in files for line, text in code_blocks(f, lang)]


PYTHON_BLOCKS = _cases("python", doc_files())
MLIR_BLOCKS = _cases("mlir", [ROOT / "docs" / "ir.md"])


def test_docs_have_blocks():
    assert PYTHON_BLOCKS, "no python blocks found in README.md / docs/*.md"
    assert MLIR_BLOCKS, "no mlir blocks found in docs/ir.md"


@pytest.mark.parametrize("path,line,text", PYTHON_BLOCKS)
def test_python_block_runs(path, line, text, tmp_path):
    script = tmp_path / f"{path.stem}_{line}.py"
    script.write_text(text, encoding="utf-8")
    env = dict(os.environ)
    env["KAIYUAN_CACHE_DIR"] = str(tmp_path / "cache")
    env.pop("KAIYUAN_DUMP", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, (f"{path.name}:{line}: block failed (exit {proc.returncode})\n"
                                  f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")


@pytest.mark.parametrize("path,line,text", MLIR_BLOCKS)
def test_mlir_block_parses(path, line, text):
    from kaiyuan.ir import parse_module, print_module

    module = parse_module(text, filename=f"{path.name}:{line}")
    if text.lstrip().startswith("builtin.module"):
        assert print_module(module) == text, f"{path.name}:{line}: the printer writes this module differently"


def test_no_run_marks_only_fragments():
    """no-run is for fragments; keep their number small so the docs stay checked."""
    marked = sum(p.read_text(encoding="utf-8").count(NO_RUN) for p in doc_files())
    assert marked <= 12, f"{marked} blocks are marked no-run"
