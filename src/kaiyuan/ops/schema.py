"""Operator definitions: what the graph engine (and any other importer) knows of an operator.

An `OpDef` says, for one operator type (ONNX's `op_type` in a domain, or one of kaiyuan's own fused
operators in the domain "kaiyuan"): which opsets it supports, its inputs and attributes with their
defaults, the dtypes it accepts, how output types follow from input types (`infer`), and how to run
it (`run`: launch its kernels on inputs that are already in memory, writing outputs that the
caller allocated). The graph engine plans memory from `infer` and calls `run`; it never knows what
a kernel looks like. `ops` never imports `graph` (DESIGN.md §1): this module is the seam.

Conventions
    TensorType.shape  a tuple of ints once shapes are known (the graph engine specialises a model
                      to its concrete input shapes before planning); a str entry names a symbolic
                      dim, None an unknown one.
    arrays            `run` gets numpy arrays on the host device (views into the run's arena,
                      possibly non-contiguous for inputs) or `ky.Tensor`s elsewhere; optional inputs
                      that are absent are None. Outputs are contiguous and exactly `infer`'s types.
    values            inputs listed in `value_inputs` (a Reshape's shape, a Slice's starts...) must
                      be constants at plan time; `infer` and `run` receive their values as numpy
                      arrays in `consts` (None for the others).
    views             an op whose output is a view of input 0 (Reshape, Squeeze, Identity...) sets
                      `view=True`: the planner aliases the output to the input's memory (when the
                      input is contiguous) and never calls `run` for it.
    in place          `inplace=True` says output 0 may be written over any input that has its
                      shape and dtype and dies at this step: every element is read before it is
                      written, by the program that writes it (element-wise kernels). The planner
                      then gives both one arena block. Kernels that the autotuner times on the
                      real arguments (GEMM, conv) must not set it: a timing run would read
                      an input the previous run already overwrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..runtime.errors import UnsupportedError

REQUIRED = object()  # an attribute default meaning "must be given"


@dataclass(frozen=True)
class TensorType:
    """A tensor's dtype (numpy dtype; bfloat16 is ml_dtypes.bfloat16) and shape."""

    dtype: np.dtype
    shape: tuple

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def static(self) -> bool:
        return all(isinstance(d, (int, np.integer)) for d in self.shape)

    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= int(d)
        return n


Infer = Callable[[list, dict, list], list]          # (input types, attrs, consts) -> output types
Run = Callable[[list, dict, list, list], None]      # (inputs, attrs, consts, outputs) -> None


@dataclass
class OpDef:
    """One operator type. See the module docstring for the meaning of each part."""

    op_type: str
    infer: Infer
    run: Run | None
    domain: str = ""
    since: int = 1                       # oldest opset whose semantics this implements
    until: int = 10**9                   # last opset with these semantics (inclusive)
    inputs: tuple[int, int] = (1, 1)     # (min, max) number of inputs
    outputs: tuple[int, int] = (1, 1)
    attrs: dict[str, Any] = field(default_factory=dict)
    dtypes: tuple[str, ...] | None = None  # numpy dtype names accepted for input 0; None: any
    value_inputs: tuple[int, ...] = ()
    view: bool = False
    inplace: bool = False   # output 0 may reuse the memory of an input of its shape and dtype
    doc: str = ""

    def resolve_attrs(self, given: dict, where: str) -> dict:
        """`given` with defaults filled in; an unknown or missing attribute is UnsupportedError."""
        unknown = set(given) - set(self.attrs)
        if unknown:
            raise UnsupportedError(f"{where}: {self.op_type} attribute(s) {sorted(unknown)} are not supported",
                                   hint=f"supported attributes: {sorted(self.attrs) or 'none'}")
        out = {}
        for name, default in self.attrs.items():
            if name in given:
                out[name] = given[name]
            elif default is REQUIRED:
                raise UnsupportedError(f"{where}: {self.op_type} needs attribute '{name}'")
            else:
                out[name] = default
        return out


_REGISTRY: dict[tuple[str, str], list[OpDef]] = {}


def register(op: OpDef) -> OpDef:
    """Add an operator definition (several may share an op_type over disjoint opset ranges)."""
    _REGISTRY.setdefault((op.domain, op.op_type), []).append(op)
    return op


def lookup(op_type: str, opset: int, domain: str = "", where: str = "") -> OpDef:
    """The definition of op_type at `opset`, or UnsupportedError naming the node and the opset."""
    load_all()
    if domain == "ai.onnx":
        domain = ""
    for op in _REGISTRY.get((domain, op_type), ()):
        if op.since <= opset <= op.until:
            return op
    known = _REGISTRY.get((domain, op_type))
    dom = domain or "ai.onnx"
    if known:
        ranges = ", ".join(f"{o.since}-{o.until if o.until < 10**9 else 'latest'}" for o in known)
        raise UnsupportedError(f"{where}{dom}.{op_type} at opset {opset} is not supported",
                               hint=f"kaiyuan implements {op_type} for opsets {ranges}")
    raise UnsupportedError(f"{where}operator {dom}.{op_type} (opset {opset}) is not supported",
                           hint="see docs/graph.md for the list of supported operators")


def registered() -> list[OpDef]:
    load_all()
    return [op for ops in _REGISTRY.values() for op in ops]


# The modules whose import registers operator definitions (kaiyuan.ops.<name>).
DEFINITION_MODULES = ("elementwise", "reduction", "movement", "indexing", "nn", "fused", "fused_reduce")


def load_all() -> None:
    """Import every module that registers definitions (idempotent; the graph engine calls it)."""
    import importlib

    for name in DEFINITION_MODULES:
        importlib.import_module(f"{__package__}.{name}")
