"""docs/graph.md's "Supported operators" table lists exactly the registered operators."""

import re
from pathlib import Path

from kaiyuan.ops.schema import registered

DOC = Path(__file__).resolve().parents[2] / "docs" / "graph.md"


def test_doc_lists_every_registered_operator():
    section = DOC.read_text().split("## Supported operators", 1)[1]
    rows = [line.split("|")[2] for line in section.splitlines() if line.startswith("| ") and "---" not in line][1:]
    listed = {w for row in rows for w in re.findall(r"\b[A-Z][A-Za-z0-9]+\b", re.sub(r"\(.*?\)", "", row))}
    ops = {d.op_type for d in registered()}
    assert listed == ops, f"missing from docs: {sorted(ops - listed)}; not registered: {sorted(listed - ops)}"
