"""Predicted time of one collective (every algorithm) and of a data- or tensor-parallel training step."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ...runtime.errors import TopologyError
from .. import cost  # a module object: cost imports this package's schedules while it loads
from .topology import Fabric


@dataclass
class CollectiveResult:
    """`times[algo]` in seconds for every algorithm that applies; `best` the fastest; `phases[algo]`
    the flat algorithm of each phase of a hierarchical one; `busbw` bytes/s of the best (NCCL's
    bus bandwidth: the all_reduce size times 2(n-1)/n over the time, n-1/n for the others)."""

    collective: str
    nbytes: int
    topology: str
    world_size: int
    times: dict[str, float]
    phases: dict[str, list[str]] = field(default_factory=dict)

    @property
    def best(self) -> str:
        return min(self.times, key=self.times.get)

    @property
    def time(self) -> float:
        return self.times[self.best]

    @property
    def busbw(self) -> float:
        n = self.world_size
        factor = 2 * (n - 1) / n if self.collective == "all_reduce" else (n - 1) / n
        size = self.nbytes * (n if self.collective == "all_gather" else 1)
        return size * factor / self.time if self.time > 0 else float("inf")

    def as_dict(self) -> dict:
        return {"collective": self.collective, "nbytes": self.nbytes, "topology": self.topology,
                "world_size": self.world_size, "best": self.best, "times_s": self.times, "phases": self.phases,
                "busbw_GBps": self.busbw / 1e9}


def _check_topology(topo) -> None:
    if not isinstance(topo, Fabric):
        raise TopologyError(f"expected a simulator topology, got {topo!r}",
                            hint="build one with simulate.fullmesh / switch / ring / torus2d / fattree / hierarchical")


def collective(topo: Fabric, name: str, nbytes: float, algo: str | None = None) -> CollectiveResult:
    """Predicted seconds of `name` with `nbytes` per-rank input on `topo`, for `algo` or every
    algorithm that applies."""
    _check_topology(topo)
    if not (isinstance(nbytes, (int, float)) and nbytes >= 0):
        raise TopologyError(f"nbytes must be a number >= 0, got {nbytes!r}", hint="sizes are bytes per rank")
    names = [algo] if algo else list(cost.algorithms(name, topo))
    times, phases = {}, {}
    for a in names:
        steps, picks = cost.schedule(name, a, nbytes, topo)
        times[a] = topo.time(steps)
        if picks:
            phases[a] = picks
    return CollectiveResult(name, int(nbytes), topo.name, topo.n, times, phases)


@dataclass
class StepResult:
    """One training step: `compute_s`, `comm_s` (all collectives back to back), `exposed_s` (the part
    of comm_s that compute does not hide), `step_s` = compute_s + exposed_s, and details."""

    compute_s: float
    comm_s: float
    exposed_s: float
    details: dict

    @property
    def step_s(self) -> float:
        return self.compute_s + self.exposed_s

    def as_dict(self) -> dict:
        return {"compute_s": self.compute_s, "comm_s": self.comm_s, "exposed_s": self.exposed_s,
                "step_s": self.step_s, **self.details}


def _compute_s(flops: float | None, tflops: float | None) -> float:
    if flops is None or tflops is None:
        return 0.0
    if tflops <= 0:
        raise TopologyError(f"device_TFLOPs must be > 0, got {tflops!r}", hint="e.g. 400 for a modern accelerator at bf16")
    return flops / (tflops * 1e12)


def data_parallel(topo: Fabric, params: float, dtype_bytes: int = 2, bucket_MB: float | None = 25.0,
                  overlap: bool = True, tokens_per_device: float | None = None, flops: float | None = None,
                  device_TFLOPs: float | None = None, algo: str | None = None) -> StepResult:
    """A data-parallel step: every device holds the whole model and all-reduces `params * dtype_bytes`
    of gradients, in buckets of `bucket_MB` (None: one bucket). Compute per device is `flops`, or
    6 * params * tokens_per_device (forward 2, backward 4 FLOPs per parameter and token), at
    `device_TFLOPs`. With `overlap`, bucket i is all-reduced as soon as backward has produced it
    (buckets are ready at even intervals over the backward pass, 2/3 of compute), one bucket at a
    time; what is left after backward ends is exposed."""
    _check_topology(topo)
    if params <= 0 or dtype_bytes <= 0:
        raise TopologyError(f"params and dtype_bytes must be > 0, got {params!r}, {dtype_bytes!r}",
                            hint="params counts the model's parameters (e.g. 7e9)")
    grad = params * dtype_bytes
    if flops is None and tokens_per_device is not None:
        flops = 6.0 * params * tokens_per_device
    compute = _compute_s(flops, device_TFLOPs)
    size = grad if not bucket_MB else min(grad, bucket_MB * 2**20)
    count = max(1, math.ceil(grad / size))
    r = collective(topo, "all_reduce", size, algo)
    per = r.times[algo] if algo else r.time
    comm = count * per
    if overlap and compute > 0:
        forward, backward = compute / 3, 2 * compute / 3
        done = 0.0
        for i in range(count):
            ready = forward + backward * (i + 1) / count
            done = max(done, ready) + per
        exposed = max(0.0, done - compute)
    else:
        exposed = comm
    return StepResult(compute, comm, exposed, {"kind": "data_parallel", "gradient_bytes": grad, "buckets": count,
                                               "bucket_bytes": size, "algorithm": algo or r.best,
                                               "bucket_s": per, "world_size": topo.n})


def gpt_shape(params: float) -> tuple[int, int]:
    """(layers, hidden) of a GPT-like model of about `params` parameters, from params ~ 12 * layers *
    hidden^2 and hidden = 128 * layers (GPT-3 175B: 96 x 12288; Llama 7B: 32 x 4096)."""
    layers = max(1, round((params / (12 * 128**2)) ** (1 / 3)))
    return layers, 128 * layers


def tensor_parallel(topo: Fabric, hidden: int | None = None, layers: int | None = None, seq: int = 4096,
                    batch: int = 1, params: float | None = None, dtype_bytes: int = 2,
                    sequence_parallel: bool = False, device_TFLOPs: float | None = None) -> StepResult:
    """A Megatron-style tensor-parallel step over all of `topo`'s devices: each layer all-reduces its
    activations (batch * seq * hidden * dtype_bytes) twice forward (attention, MLP) and twice
    backward; with `sequence_parallel` each all_reduce becomes an all_gather plus a reduce_scatter
    of the same total. No overlap (these collectives sit on the critical path). Give hidden and
    layers, or params (then `gpt_shape`). Compute: 6 * 12 * hidden^2 * layers * tokens / n."""
    _check_topology(topo)
    if hidden is None or layers is None:
        if params is None:
            raise TopologyError("tensor_parallel needs hidden and layers, or params",
                                hint="e.g. tensor_parallel(topo, hidden=8192, layers=80) or params=70e9")
        layers, hidden = gpt_shape(params)
    act = batch * seq * hidden * dtype_bytes
    n = topo.n
    if sequence_parallel:
        ag = collective(topo, "all_gather", act / n)
        rs = collective(topo, "reduce_scatter", act)
        per_layer, algos = 4 * (ag.time + rs.time), {"all_gather": ag.best, "reduce_scatter": rs.best}
    else:
        ar = collective(topo, "all_reduce", act)
        per_layer, algos = 4 * ar.time, {"all_reduce": ar.best}
    comm = layers * per_layer
    flops = 6 * 12 * hidden**2 * layers * batch * seq / n
    compute = _compute_s(flops, device_TFLOPs)
    return StepResult(compute, comm, comm, {"kind": "tensor_parallel", "layers": layers, "hidden": hidden,
                                            "activation_bytes": act, "collectives_per_layer": 4,
                                            "algorithms": algos, "world_size": n,
                                            "params": 12 * hidden**2 * layers})
