"""Helpers for IR-in/IR-out tests: wrap an op listing in the standard module, check a pass's
exact output, and run a graph model op by op with onnx's reference evaluator (to check that a
rewrite keeps the model's meaning)."""

from __future__ import annotations

import textwrap

import numpy as np

from kaiyuan.graph import GraphModel
from kaiyuan.graph.attributes import dense_array
from kaiyuan.graph.dialect import ConstantOp, KygOp, NoneOp, WeightOp, attrs, op_type
from kaiyuan.graph.passes.fold import evaluate


def module(args: str, results: str, body: str, opset: int = 17) -> str:
    """The text `GraphModel.text()` prints for @main(args) -> (results) with `body` (ops and the
    return, one per line, any indentation)."""
    lines = textwrap.indent(textwrap.dedent(body).strip("\n"), "    ", lambda _: True)
    return (f'builtin.module attributes {{kyg.version = "0.1", kyg.opset = {opset} : i64}} {{\n'
            f"  func.func @main({args}) -> ({results}) {{\n{lines}\n  }}\n}}\n")


def check_pass(fn, before: str, after: str, weights: dict | None = None) -> GraphModel:
    """Assert that pass `fn` turns the module `before` into exactly `after` (and leaves its
    argument as it was); returns the output model."""
    model = GraphModel.from_text(before, weights)
    out = fn(model)
    assert out.text() == after, "\n--- got:\n" + out.text() + "--- want:\n" + after
    assert model.text() == before
    GraphModel.from_text(out.text(), out.weights)  # what a pass prints parses and verifies
    return out


def run_reference(model: GraphModel, feeds: dict) -> list[np.ndarray]:
    """The model's outputs for `feeds` (input name → array), each op run by onnx's reference
    evaluator: the meaning of the IR, independent of kaiyuan's kernels."""
    env = {arg: feeds[info.name] for arg, info in zip(model.block.args, model.inputs)}
    for op in model.block.ops:
        if isinstance(op, WeightOp):
            env[op.results[0]] = model.weights[op.weight_name.data]
        elif isinstance(op, ConstantOp):
            env[op.results[0]] = dense_array(op.value)
        elif isinstance(op, NoneOp):
            env[op.results[0]] = None
        elif isinstance(op, KygOp):
            assert op_type(op)[0] == "", "the reference runs ai.onnx ops only"
            outs = evaluate(op_type(op)[1], attrs(op), [env[v] for v in op.operands], len(op.results), model.opset)
            env.update(zip(op.results, outs))
    return [np.asarray(env[v]) for v in model.returned()]
