"""Every ```mlir block of docs/graph.md is a module that parses, verifies and prints back
unchanged (the ```python blocks run in tests/docs)."""

import re
from pathlib import Path

import pytest

from kaiyuan.graph.text import parse_ir, print_ir

pytestmark = pytest.mark.usefixtures("ref_registry")

DOC = Path(__file__).resolve().parents[2] / "docs" / "graph.md"
BLOCKS = re.findall(r"^```mlir\n(.*?)^```$", DOC.read_text(encoding="utf-8"), flags=re.M | re.S)


def test_the_doc_has_ir_examples():
    assert BLOCKS


@pytest.mark.parametrize("text", BLOCKS)
def test_ir_examples_parse_and_print_back(text):
    assert print_ir(parse_ir(text, "docs/graph.md")) == text
