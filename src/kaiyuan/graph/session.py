"""`kaiyuan.InferenceSession`: onnxruntime's API over kaiyuan's graph engine.

    sess = kaiyuan.InferenceSession("model.onnx")          # or an onnx.ModelProto, or a .kym file
    [y] = sess.run(None, {"x": x})

Stages, per distinct set of input shapes (the first run with new shapes compiles, later runs
with the same shapes reuse the plan):
    1. import       ONNX → `kyg` (once per session; unsupported ops fail here, naming the node)
    2. specialise   the input shapes fixed, every type inferred (shape subgraphs fold away)
    3. passes       kaiyuan.graph.passes.DEFAULT_PASSES (folding, CSE/DCE, simplification, fusion)
    4. plan         kernel steps over one arena (kaiyuan.graph.executor)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..runtime.errors import ArgumentError
from ..runtime.registry import default_device, get_device
from .executor import Plan, build_plan

_ONNX_TYPES = {
    "float32": "tensor(float)", "float64": "tensor(double)", "float16": "tensor(float16)",
    "bfloat16": "tensor(bfloat16)", "int8": "tensor(int8)", "int16": "tensor(int16)", "int32": "tensor(int32)",
    "int64": "tensor(int64)", "uint8": "tensor(uint8)", "uint16": "tensor(uint16)", "uint32": "tensor(uint32)",
    "uint64": "tensor(uint64)", "bool": "tensor(bool)",
}


@dataclass(frozen=True)
class NodeArg:
    """A graph input or output as onnxruntime describes it: name, shape (ints, and str for
    symbolic dims), type string such as "tensor(float)"."""

    name: str
    shape: list
    type: str


class InferenceSession:
    """Run an ONNX model (path, bytes or ModelProto) or a .kym file with kaiyuan.

    `device` is a kaiyuan device name ("cpu", "interp"); default: kaiyuan's default device.
    `providers` and `sess_options` are accepted for onnxruntime compatibility and ignored.
    `passes`: the list of graph passes (default: kaiyuan.graph.passes.DEFAULT_PASSES)."""

    def __init__(self, path_or_model, sess_options=None, providers=None, *, device=None, passes=None,
                 trust_artefacts: bool = True):
        from .onnx_import import import_onnx

        self.device = get_device(device) if isinstance(device, str) else (device or default_device())
        self._passes = passes
        self._plans: dict = {}
        self.last_dump: list = []
        self.last_fusions: list = []
        self.kym_manifest: dict | None = None
        if isinstance(path_or_model, (str, os.PathLike)) and str(path_or_model).endswith(".kym"):
            from .kym_session import load_model

            self.model, self._plans = load_model(path_or_model, self, trust_artefacts=trust_artefacts)
        else:
            if isinstance(path_or_model, (bytes, bytearray)):
                import onnx

                path_or_model = onnx.load_from_string(bytes(path_or_model))
            self.model = import_onnx(path_or_model)
        self._inputs = self.model.inputs
        self._outputs = self.model.outputs
        from .infer import plan_time_inputs

        self._plan_time = plan_time_inputs(self.model)  # inputs whose values decide shapes

    # ------------------------------------------------------------------ onnxruntime's API
    def get_inputs(self) -> list[NodeArg]:
        return [_node_arg(v) for v in self._inputs]

    def get_outputs(self) -> list[NodeArg]:
        return [_node_arg(v) for v in self._outputs]

    def get_providers(self) -> list[str]:
        return [f"kaiyuan:{self.device.name}"]

    def run(self, output_names, input_feed: dict, run_options=None) -> list[np.ndarray]:
        names = [v.name for v in self._inputs]
        missing = [n for n in names if n not in input_feed]
        if missing:
            raise ArgumentError(f"missing input(s) {missing}", hint=f"the model's inputs are {names}")
        extra = [n for n in input_feed if n not in names]
        if extra:
            raise ArgumentError(f"unknown input(s) {extra}", hint=f"the model's inputs are {names}")
        known = [v.name for v in self._outputs]
        if output_names is not None:
            bad = [n for n in output_names if n not in known]
            if bad:
                raise ArgumentError(f"unknown output(s) {bad}", hint=f"the model's outputs are {known}")
        feeds = {n: np.asarray(input_feed[n]) for n in names}
        values = {n: feeds[n] for n in self._plan_time}
        plan = self.plan_for({n: a.shape for n, a in feeds.items()}, values)
        with self.device:
            results = plan.run(feeds)
        if output_names is None:
            return results
        return [results[known.index(n)] for n in output_names]

    # ------------------------------------------------------------------ compiling
    def plan_for(self, shapes: dict, values: dict | None = None) -> Plan:
        """The execution plan for these input shapes (built on first use). `values` holds the
        feeds of inputs that decide shapes (a Reshape's shape given as a graph input): each set of
        their values gets its own plan, like each set of shapes."""
        values = {n: np.asarray(v) for n, v in (values or {}).items()}
        key = (tuple((n, tuple(int(d) for d in s)) for n, s in sorted(shapes.items())),
               tuple((n, v.dtype.str, v.tobytes()) for n, v in sorted(values.items())))
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = build_plan(self.compile(shapes, values))
        return plan

    def compile(self, shapes: dict, values: dict | None = None):
        """Stages 2-3: the specialised, optimised GraphModel for these input shapes."""
        from .infer import specialise
        from .passes import run_passes

        from .fusion import FUSIONS

        dump: list = []
        fusions: list = []
        passes = self._passes if self._passes is not None else pipeline()
        token = FUSIONS.set(fusions)
        try:
            model = run_passes(specialise(self.model, shapes, values), passes, dump=dump)
        finally:
            FUSIONS.reset(token)
        self.last_dump, self.last_fusions = dump, fusions
        return model


def pipeline() -> list:
    """The session's passes: the target-independent ones, then fusion, then clean-up."""
    from .fusion import FUSION_PASSES, pack_weights
    from .fusion_elementwise import fuse_elementwise, fuse_reduction
    from .passes import DEFAULT_PASSES, cse, dce

    # element-wise fusion last: the GEMM epilogues take their activations first; then reductions
    # take the element-wise chains that feed them; weights are packed once every fusion is done
    return list(DEFAULT_PASSES) + FUSION_PASSES + [("dce", dce), ("fuse_elementwise", fuse_elementwise),
                                                    ("dce", dce), ("fuse_reduction", fuse_reduction),
                                                    ("cse", cse), ("dce", dce), ("pack_weights", pack_weights),
                                                    ("dce", dce)]


def _node_arg(v) -> NodeArg:
    shape = None if v.shape is None else [d if d is not None else None for d in v.shape]
    return NodeArg(v.name, shape, _ONNX_TYPES.get(np.dtype(v.dtype).name, f"tensor({np.dtype(v.dtype).name})"))
