"""Execution plans: a specialised graph turned into a list of kernel calls over one arena.

Stages (`build_plan`)
    1. steps      each op of `@main` in order becomes a Step: its OpDef, resolved attributes,
                  plan-time constant inputs, and the keys of the tensors it reads and writes;
                  weights and inline constants become arrays held by the plan;
    2. views      an op with `view=True` (Reshape, Squeeze, ...) writes nothing: its output is
                  the same bytes as its input, seen with another shape, so it costs no step;
                  a Transpose is a strided view of its input (every OpDef reads strided
                  inputs), and so is a Slice with constant bounds and unit steps (the
                  columns of one fused GEMM's output that each consumer reads); a
                  reshape-like view of a strided view is a view too when its strides allow
                  (numpy's no-copy reshape, tried on a memoryless stand-in at plan time),
                  else the reshape runs as a step (its OpDef copies);
    3. arena      lifetimes of the remaining tensors (graph inputs written before step 0, graph
                  outputs read after the last step) → `plan.plan_arena` → one byte buffer;
                  an element-wise step (OpDef `inplace`) writes over an input of its shape and
                  dtype that dies there;
    4. bind       every tensor becomes a numpy view into the arena (or a weight), made once,
                  so running the plan is a loop of `op.run(inputs, attrs, consts, outputs)`
                  calls with nothing left to look up;
    5. capture    the second run records each step's kernel launches (kaiyuan.runtime.capture);
                  a step whose launches only touch the plan's own memory, or scratch buffers
                  the step allocated while captured (then kept by the step: conv2d's padded
                  input copy), is from then on replayed as those launches, one backend call
                  each, skipping the OpDef's host code (argument checks, specialisation,
                  autotuning). The first run compiles and tunes, so it is not captured;
    6. batch      consecutive replayable steps become one replay batch (`capture.replay_list`):
                  on cpu a run of kernels is one C call (`ky_run_list`), so the host cost of a
                  step is a C function call, not a Python one.

A run copies the feeds into their arena slots, runs the steps, and returns copies of the
outputs (the arena is reused by the next run, so results must not alias it).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from ..ops.schema import OpDef, lookup
from ..runtime.capture import capture, replay_list
from ..runtime.errors import ArgumentError, KaiyuanError
from .plan import ArenaPlan, plan_arena


@dataclass
class Step:
    node: str
    op: OpDef
    attrs: dict
    consts: list
    inputs: list          # tensor keys (None: absent optional input)
    outputs: list
    args_in: list = field(default_factory=list)   # bound arrays
    args_out: list = field(default_factory=list)
    launches: list | None = None                  # captured launches (stage 5), when valid
    scratch: list = field(default_factory=list)   # buffers the step allocated that its launches use


@dataclass
class TensorInfo:
    dtype: np.dtype
    shape: tuple

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


@dataclass
class Plan:
    steps: list
    tensors: dict            # key -> TensorInfo
    inputs: list             # [(name, key)]
    outputs: list            # [(name, key)]
    constants: dict          # key -> array (weights, inline constants)
    arena_plan: ArenaPlan | None = None
    arena: np.ndarray | None = None
    arrays: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    runs: int = 0
    segments: list | None = None  # after capture: steps that run their OpDef, and replay batches
    _ranges: list | None = None

    def report(self) -> str:
        kinds: dict = {}
        for s in self.steps:
            kinds[s.op.op_type] = kinds.get(s.op.op_type, 0) + 1
        ops = ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1]))
        replayed = sum(1 for s in self.steps if s.launches is not None)
        return (f"{len(self.steps)} kernel steps ({ops}); {self.arena_plan.summary()}; "
                f"{replayed} steps replay captured launches")

    # ------------------------------------------------------------------ running
    def run(self, feeds: dict, output_names=None) -> list:
        with self.lock:
            for name, key in self.inputs:
                _copy_in(name, feeds[name], self.arrays[key])
            if self.segments is not None:
                self._replay()
            else:
                capturing = self.runs == 1  # run 0 compiles and tunes; run 1 records; later runs replay
                for s in self.steps:
                    if capturing:
                        with capture() as launches:
                            _run_step(s)
                        s.launches, s.scratch = self._replayable(launches)
                    else:
                        _run_step(s)
                if capturing:
                    self.segments = self._segments()
            self.runs += 1
            wanted = self.outputs if output_names is None else [(n, k) for n, k in self.outputs if n in output_names]
            return [np.array(self.arrays[k], copy=True) for _, k in wanted]

    def _replay(self) -> None:
        for seg in self.segments:
            if isinstance(seg, Step):
                _run_step(seg)
                continue
            call, owners = seg
            try:
                call()
            except KaiyuanError as e:
                raise _at_node(owners[getattr(e, "launch_index", 0) or 0], e) from None

    def _segments(self) -> list:
        """Stage 6: consecutive steps whose launches replay become one batch
        (`capture.replay_list`: one backend call where the backend can chain launches, e.g. one
        C call for a run of cpu kernels); the others stay steps that run their OpDef."""
        segments: list = []
        pending: list = []

        def flush():
            if pending:
                launches = [launch for s in pending for launch in s.launches]
                owners = [s for s in pending for _ in s.launches]
                segments.append((replay_list(launches), owners))
                pending.clear()

        for s in self.steps:
            if s.launches is not None:
                pending.append(s)
            else:
                flush()
                segments.append(s)
        flush()
        return segments

    def _replayable(self, launches) -> tuple[list | None, list]:
        """Stage 5: a step's captured launches, when replaying them alone redoes the step, and the
        scratch buffers they use: at least one launch, and every pointer into memory the plan owns
        (the arena, weights) or into a buffer the step allocated while it was captured (conv2d's
        padded input copy), which the step then keeps for its replays. A step that made no
        launch, or wrote device memory outside its launches (the capture is not `pure`), did
        host-side work: it keeps running its OpDef."""
        if not launches or not launches.pure:
            return None, []
        used = {}
        for launch in launches:
            for address, offset in launch.pointers():
                if address is None:
                    return None, []
                a = address + offset
                if self._owns(a):
                    continue
                owner = launches.owner_of(a)
                if owner is None:
                    return None, []
                used[id(owner)] = owner
        return list(launches), list(used.values())

    def _owns(self, address: int) -> bool:
        if self._ranges is None:
            self._ranges = [(a.ctypes.data, a.ctypes.data + max(a.nbytes, 1))
                            for a in [self.arena, *self.constants.values()] if isinstance(a, np.ndarray)]
        return any(lo <= address < hi for lo, hi in self._ranges)


def _run_step(s: Step) -> None:
    try:
        s.op.run(s.args_in, s.attrs, s.consts, s.args_out)
    except KaiyuanError as e:
        raise _at_node(s, e) from None


def _at_node(s: Step, e: KaiyuanError) -> KaiyuanError:
    return type(e)(f"node '{s.node}' ({s.op.op_type}): {e.message}", hint=e.hint, loc=e.loc)


def _copy_in(name: str, value, slot: np.ndarray) -> None:
    arr = np.asarray(value)
    if arr.dtype != slot.dtype:
        raise ArgumentError(f"input '{name}' has dtype {arr.dtype}, the model expects {slot.dtype}",
                            hint=f"convert it with .astype(np.{slot.dtype})")
    if arr.shape != slot.shape:
        raise ArgumentError(f"input '{name}' has shape {arr.shape}, the plan was built for {slot.shape}")
    np.copyto(slot, arr)


# ---------------------------------------------------------------------- building
def bind(plan: Plan, views: dict) -> Plan:
    """Stages 3 and 4: plan the arena over the non-view tensors and make every array once.

    views: key -> (key of the tensor whose bytes it reuses, None for a reshape or the permutation
    of a transpose); chains allowed, in the order the ops came."""
    def root(k):
        while k in views:
            k = views[k][0]
        return k

    last = len(plan.steps)
    written: dict = {}
    reads: dict = {}
    for _, key in plan.inputs:
        written[root(key)] = -1
    for i, s in enumerate(plan.steps):
        for k in s.inputs:
            if k is not None:
                reads[root(k)] = i
        for k in s.outputs:
            written.setdefault(root(k), i)
    for _, key in plan.outputs:
        reads[root(key)] = last
    temps = {k: (plan.tensors[k].nbytes, w) for k, w in written.items() if k not in plan.constants}
    plan.arena_plan = plan_arena(temps, reads, _inplace(plan, views, temps))
    plan.arena = np.empty(max(plan.arena_plan.size, 1), np.uint8)
    arrays = dict(plan.constants)
    for key, off in plan.arena_plan.offsets.items():
        info = plan.tensors[key]
        arrays[key] = plan.arena[off: off + info.nbytes].view(info.dtype).reshape(info.shape)
    for key, (src, perm) in views.items():
        base = arrays[src]
        if perm is not None and perm[0] == "strided":  # (src is the root) byte offset and strides
            info = plan.tensors[key]
            arrays[key] = np.ndarray(info.shape, info.dtype, buffer=base, offset=perm[1], strides=perm[2])
            continue
        arrays[key] = base.reshape(plan.tensors[key].shape) if perm is None else base.transpose(perm)
    plan.arrays = arrays
    for s in plan.steps:
        s.args_in = [None if k is None else arrays[k] for k in s.inputs]
        s.args_out = [arrays[k] for k in s.outputs]
    return plan


def _inplace(plan: Plan, views: dict, temps: dict) -> dict:
    """Output key -> input key it may overwrite: for steps whose OpDef allows it (`inplace`), the
    first input that is an arena tensor of its own (not a view, not a weight) with the output's
    shape and dtype; the planner honours it only when that input dies at this step."""
    def root(k):
        while k in views:
            k = views[k][0]
        return k

    out: dict = {}
    for s in plan.steps:
        if not s.op.inplace or s.outputs[0] in views or s.outputs[0] not in temps:
            continue
        want = plan.tensors[s.outputs[0]]
        for k in s.inputs:
            if k is None or k not in temps or k in views or k in out.values() or plan.tensors[k] != want:
                continue
            # another input that views the same bytes in another layout (Add(x, Transpose(x)))
            # would read elements this step has already overwritten
            if any(j is not None and j != k and root(j) == k for j in s.inputs):
                continue
            out[s.outputs[0]] = k
            break
    return out


def _stand_in(key, tensors: dict, views: dict, roots: dict) -> np.ndarray:
    """A memoryless array with tensor `key`'s shape and its view's strides, over the stand-in of
    its root tensor (contiguous, over a 1-element buffer; one per root, kept in `roots`)."""
    info = tensors[key]
    if key not in views:
        if key not in roots:
            strides = [info.dtype.itemsize] * len(info.shape)
            for i in range(len(info.shape) - 2, -1, -1):
                strides[i] = strides[i + 1] * info.shape[i + 1]
            roots[key] = np.lib.stride_tricks.as_strided(np.zeros(1, info.dtype), info.shape, strides)
        return roots[key]
    src, spec = views[key]
    base = _stand_in(src, tensors, views, roots)
    if spec is None:
        return base.reshape(info.shape)
    if spec[0] == "strided":
        return np.lib.stride_tricks.as_strided(base.reshape(-1)[spec[1] // info.dtype.itemsize:], info.shape, spec[2])
    return base.transpose(spec)


def _strided_view(kind, d, ins, consts, outs, tensors, views, strided, constants, roots):
    """("strided", byte offset, byte strides) of a Slice (constant bounds, unit steps) or of a
    reshape-like view of a strided tensor, relative to the root tensor; None when it needs a copy."""
    src = ins[0] if ins else None
    if src is None or src in constants or src not in tensors or not (kind == ("", "Slice") or
                                                                     (d.view and src in strided)):
        return None
    probe = _stand_in(src, tensors, views, roots)
    try:
        if kind == ("", "Slice"):
            if len(consts) < 3 or consts[1] is None or consts[2] is None:
                return None
            if len(ins) > 4 and ins[4] is not None and any(int(v) != 1 for v in consts[4]):
                return None
            rank = probe.ndim
            axes = [int(a) % rank for a in consts[3]] if len(ins) > 3 and ins[3] is not None else list(range(rank))
            index = [slice(None)] * rank
            for a, lo, hi in zip(axes, consts[1], consts[2]):
                index[a] = slice(int(lo), int(hi))
            out = probe[tuple(index)]
        else:
            out = np.reshape(probe, tensors[outs[0]].shape, copy=False)
    except (ValueError, TypeError):
        return None
    if out.shape != tensors[outs[0]].shape:
        return None
    root = src
    while root in views:
        root = views[root][0]
    base = _stand_in(root, tensors, views, roots)
    offset = out.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    return root, ("strided", offset, out.strides)


def resolve(op_type: str, opset: int, domain: str, node: str) -> OpDef:
    return lookup(op_type, opset, domain, where=f"node '{node}': ")


def build_plan(model) -> Plan:
    """Stages 1-4 for a specialised GraphModel (every type static)."""
    from xdsl.dialects import func

    from . import dialect
    from .attributes import type_dtype, type_shape
    from .rewrite import constant_value

    opset = model.opset
    tensors: dict = {}
    constants: dict = {}
    views: dict = {}
    strided: set = set()  # tensors that are non-contiguous views
    roots: dict = {}      # root tensor -> its memoryless stand-in (_stand_in)
    steps: list = []

    def info(v):
        if v not in tensors:
            tensors[v] = TensorInfo(np.dtype(type_dtype(v.type)), tuple(int(d) for d in type_shape(v.type)))
        return v

    inputs = [(vi.name, info(arg)) for vi, arg in zip(model.inputs, model.block.args)]
    for op in model.block.ops:
        if isinstance(op, func.ReturnOp):
            continue
        if isinstance(op, dialect.NoneOp):
            continue
        if isinstance(op, (dialect.WeightOp, dialect.ConstantOp)):
            constants[info(op.results[0])] = np.require(constant_value(model, op.results[0]), requirements="C")
            continue
        d = dialect.opdef_of(op, opset)
        name = dialect.node_name(op)
        attrs = d.resolve_attrs(dialect.attrs(op), f"node '{name}'")
        ins = [None if dialect.is_absent(v) else info(v) for v in op.operands]
        consts = [constant_value(model, v) if i in d.value_inputs and v is not None else None
                  for i, v in enumerate(ins)]
        outs = [info(r) for r in op.results]
        if d.view and ins[0] is not None and ins[0] not in strided:
            views[outs[0]] = (ins[0], None)
            continue
        if dialect.op_type(op) == ("", "Transpose") and ins[0] in tensors and ins[0] not in constants:
            perm = attrs.get("perm") or list(range(len(tensors[ins[0]].shape)))[::-1]
            views[outs[0]] = (ins[0], tuple(int(p) for p in perm))
            strided.add(outs[0])
            continue
        view = _strided_view(dialect.op_type(op), d, ins, consts, outs, tensors, views, strided, constants, roots)
        if view is not None:
            views[outs[0]] = view
            strided.add(outs[0])
            continue
        steps.append(Step(name, d, attrs, consts, ins, outs))
    outputs = [(vi.name, info(v)) for vi, v in zip(model.outputs, model.returned())]
    plan = Plan(steps, tensors, inputs, outputs, constants)
    return bind(plan, views)
