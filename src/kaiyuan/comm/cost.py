"""The alpha-beta-gamma cost model that picks a collective algorithm for the runtime.

A transport is priced by three numbers: alpha, the fixed cost of one synchronisation round or
message (seconds); beta, the cost of moving one byte (seconds per byte, 1 / bandwidth); gamma, the
cost of reducing one byte (seconds per byte). A `Topology` is a list of hosts, each with some
ranks, an intra-host transport and an inter-host transport. Each algorithm's schedule of steps
(`simulate.schedules`, shared with the supernode simulator) is priced step by step:

- intra-host flows: alpha (once per step for a transport whose ranks can post to all peers at
  once, like shared memory; once per message otherwise, like MPI point-to-point) plus the bytes
  of the busiest rank (max of its sent and received bytes) times beta. On shared memory a buffer
  sent to several peers is written once.
- inter-host flows: every rank of a host shares the host's network link: alpha (per message)
  plus the bytes of the busiest host link times beta.
- a step costs the slower of the two, plus gamma times the bytes the busiest rank reduces.

Ranks are placed host after host (rank r is on the host that holds the r-th slot). Defaults
for the transports are in `DEFAULTS` (docs/comm.md); `simulate.calibrate.calibrate_shm()` (or
`kaiyuan comm-sim --calibrate`) measures the shm transport and `save_calibration()` stores the
figures in the kaiyuan cache folder, where `transport()` finds them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..runtime.errors import TopologyError, UnsupportedError
from .simulate.implemented import implemented_schedule, segment_bytes
from .simulate.schedules import ALGORITHMS, COLLECTIVES, FLAT, Step, flat_schedule, hierarchical_schedule

__all__ = ["Transport", "Topology", "DEFAULTS", "transport", "algorithms", "predict", "choose_algorithm",
           "predict_all", "calibration_path", "save_calibration", "COLLECTIVES", "ALGORITHMS"]


@dataclass(frozen=True)
class Transport:
    """alpha (s per round or message), beta (s per byte), gamma (s per byte reduced);
    `multiport`: one alpha covers messages to many peers in a step (shared memory);
    `shared_memory`: a buffer sent to several peers is written once."""

    name: str
    alpha: float
    beta: float
    gamma: float
    multiport: bool = False
    shared_memory: bool = False


# Defaults: shm fitted by `kaiyuan comm-sim --calibrate` on the 2-core development VM (busy with
# other jobs, so pessimistic); the others are rough figures of the same order. kaiyuan's shm and
# local transports move every message through its own channel, so alpha is paid per message.
# "mpi" inside a host is MPICH over its own shared memory; across hosts, a 10 Gb/s network.
DEFAULTS: dict[tuple[str, str], Transport] = {
    ("local", "intra"): Transport("local", 50e-6, 1 / 4e9, 1 / 10e9),
    ("shm", "intra"): Transport("shm", 200e-6, 1 / 2e9, 1 / 10e9),
    ("mpi", "intra"): Transport("mpi", 20e-6, 1 / 3e9, 1 / 10e9),
    ("mpi", "inter"): Transport("mpi", 50e-6, 1 / 1.2e9, 1 / 10e9),
}


def calibration_path() -> Path:
    d = os.environ.get("KAIYUAN_CACHE_DIR")
    return (Path(d) if d else Path.home() / ".cache" / "kaiyuan") / "comm" / "calibration.json"


@lru_cache(maxsize=None)
def _calibrated() -> dict:
    try:
        return json.loads(calibration_path().read_text())
    except (OSError, ValueError):
        return {}


def transport(name: str | Transport, scope: str = "intra") -> Transport:
    """The parameters of a transport by name ("local", "shm", "mpi") and scope ("intra" within a
    host, "inter" between hosts): a stored calibration if there is one, else the default."""
    if isinstance(name, Transport):
        return name
    base = DEFAULTS.get((name, scope)) or DEFAULTS.get((name, "intra"))
    if base is None:
        raise TopologyError(f"unknown transport {name!r}",
                           hint=f"use one of {sorted({n for n, _ in DEFAULTS})}, or pass a cost.Transport")
    stored = _calibrated().get(f"{name}/{scope}")
    if stored:
        base = replace(base, **{k: float(stored[k]) for k in ("alpha", "beta", "gamma") if k in stored})
    return base


def save_calibration(name: str, scope: str, *, alpha: float, beta: float, gamma: float | None = None) -> Path:
    """Store measured parameters for `transport(name, scope)` (merged into the cache file)."""
    path = calibration_path()
    data = dict(_calibrated())
    entry = {"alpha": alpha, "beta": beta}
    if gamma is not None:
        entry["gamma"] = gamma
    data[f"{name}/{scope}"] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    _calibrated.cache_clear()
    _predict.cache_clear()
    _choose.cache_clear()
    return path


@dataclass(frozen=True)
class Topology:
    """Hosts with `ranks_per_host[i]` ranks each; `intra` prices flows inside a host, `inter`
    flows between hosts (unused on one host). `schedules`: "runtime" prices kaiyuan's own
    algorithms (simulate/implemented.py: rank-order folds), "textbook" the classic ones."""

    ranks_per_host: tuple[int, ...]
    intra: Transport
    inter: Transport | None = None
    schedules: str = "runtime"

    @classmethod
    def local_host(cls, world_size: int, transport: str | Transport = "shm", schedules: str = "runtime") -> "Topology":
        return cls.hosts([world_size], intra=transport, schedules=schedules)

    @classmethod
    def hosts(cls, ranks_per_host, intra: str | Transport = "shm", inter: str | Transport = "mpi",
              schedules: str = "runtime") -> "Topology":
        counts = tuple(int(n) for n in ranks_per_host)
        if not counts or min(counts) < 1:
            raise TopologyError(f"ranks_per_host must list at least one host with at least one rank, got {list(counts)}",
                               hint="e.g. Topology.hosts([4, 4]) for two hosts of 4 ranks")
        if schedules not in ("runtime", "textbook"):
            raise TopologyError(f"schedules must be 'runtime' or 'textbook', got {schedules!r}",
                                hint="'runtime' prices kaiyuan.comm's own algorithms")
        return cls(counts, globals()["transport"](intra, "intra"),
                   globals()["transport"](inter, "inter") if len(counts) > 1 else None, schedules)

    @property
    def world_size(self) -> int:
        return sum(self.ranks_per_host)

    def grid(self) -> tuple[int, int] | None:
        """(hosts, ranks per host) when hierarchical algorithms apply: several hosts, same count each."""
        H, counts = len(self.ranks_per_host), set(self.ranks_per_host)
        if H > 1 and len(counts) == 1 and next(iter(counts)) > 1:
            return H, self.ranks_per_host[0]
        return None

    def order(self) -> np.ndarray:
        return np.arange(self.world_size)

    def step_time(self, step: Step) -> float:
        host = np.repeat(np.arange(len(self.ranks_per_host)), self.ranks_per_host)
        cross = host[step.src] != host[step.dst]
        t = 0.0
        if (~cross).any():
            t = _priced(self.intra, step, ~cross, step.src, step.dst, self.world_size)
        if cross.any():
            t = max(t, _priced(self.inter, step, cross, host[step.src], host[step.dst], len(self.ranks_per_host),
                               shared=False))
        return (t + step.reduce * self.intra.gamma) * step.repeat

    def time(self, steps: list[Step]) -> float:
        return float(sum(self.step_time(s) for s in steps))


def _priced(tp: Transport, step: Step, mask, src_end, dst_end, n: int, shared: bool = True) -> float:
    """alpha-beta price of the flows in `mask`, their endpoints being ranks or hosts (0..n-1)."""
    src, dst, nb = src_end[mask], dst_end[mask], step.nbytes[mask]
    if step.fanout and tp.shared_memory and shared:
        sent = np.zeros(n)
        np.maximum.at(sent, src, nb)  # written once, read by every destination
    else:
        sent = np.bincount(src, weights=nb, minlength=n)
    received = np.bincount(dst, weights=nb, minlength=n)
    messages = 1 if tp.multiport else int(max(np.bincount(step.src[mask]).max(), np.bincount(step.dst[mask]).max()))
    return tp.alpha * messages + max(sent.max(), received.max()) * tp.beta


def algorithms(collective: str, topology) -> tuple[str, ...]:
    """The algorithms that apply to `collective` on `topology` (hierarchical needs a host grid)."""
    if collective not in FLAT:
        raise UnsupportedError(f"unknown collective {collective!r}", hint=f"one of {', '.join(COLLECTIVES)}")
    return FLAT[collective] + (("hierarchical",) if topology.grid() else ())


def schedule(collective: str, algo: str, nbytes: float, topology, segment: int | None = None) -> tuple[list[Step], list[str]]:
    """The steps of `algo` on `topology`, in device numbering; and, for hierarchical, the
    flat algorithm each phase uses."""
    if algo not in algorithms(collective, topology):
        raise UnsupportedError(f"algorithm {algo!r} does not apply to {collective} on this topology",
                               hint=f"choose one of {', '.join(algorithms(collective, topology))}")
    if getattr(topology, "schedules", None) == "runtime":
        steps = implemented_schedule(collective, algo, topology.world_size, float(nbytes), topology.grid(),
                                     segment or segment_bytes())
        if steps is not None:
            return steps, []
    if algo == "hierarchical":
        H, k = topology.grid()
        return hierarchical_schedule(collective, H, k, float(nbytes), topology.time)
    order = topology.order()
    return [s.mapped(order) for s in flat_schedule(collective, algo, topology.world_size, float(nbytes))], []


def predict(collective: str, algo: str, nbytes: int, topology) -> float:
    """Predicted seconds of one `collective` of `nbytes` per-rank input with `algo` on `topology`."""
    return _predict(collective, algo, int(nbytes), topology, segment_bytes())


@lru_cache(maxsize=4096)
def _predict(collective: str, algo: str, nbytes: int, topology, segment: int) -> float:
    steps, _ = schedule(collective, algo, nbytes, topology, segment)
    return topology.time(steps)


def predict_all(collective: str, nbytes: int, topology) -> dict[str, float]:
    return {a: predict(collective, a, int(nbytes), topology) for a in algorithms(collective, topology)}


def choose_algorithm(collective: str, nbytes: int, world_size: int, topology: Topology | None = None,
                     candidates=None) -> str:
    """The cheapest algorithm for this call. `candidates` limits the choice (e.g. to what a
    transport implements); ties go to direct, else to the earlier algorithm in `algorithms()`. The choice is made
    at the power of two nearest `nbytes` (and cached), so a call costs a dictionary look-up."""
    topology = topology or Topology.local_host(world_size)
    if topology.world_size != world_size:
        raise TopologyError(f"the topology has {topology.world_size} ranks but the group has {world_size}",
                            hint="build the Topology for the group's ranks (Topology.local_host(world_size))")
    bucket = 1 << max(0, round(np.log2(max(int(nbytes), 1))))
    return _choose(collective, bucket, topology, None if candidates is None else tuple(candidates), segment_bytes())


@lru_cache(maxsize=4096)
def _choose(collective: str, nbytes: int, topology: Topology, candidates, segment: int) -> str:
    names = [a for a in algorithms(collective, topology) if candidates is None or a in candidates]
    if not names:
        raise UnsupportedError(f"none of {list(candidates)} applies to {collective}",
                               hint=f"choose among {', '.join(algorithms(collective, topology))}")
    if topology.world_size <= 1:
        return names[0]
    # ties (two ranks: halving-doubling and direct are the same exchange) go to direct, which the
    # runtime implements with fewer copies; otherwise to the earlier algorithm
    times = {a: predict(collective, a, nbytes, topology) for a in names}
    best = min(times.values())
    tied = [a for a in names if times[a] <= best * (1 + 1e-9)]
    return "direct" if "direct" in tied else tied[0]
