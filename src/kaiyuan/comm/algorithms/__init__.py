"""The collective algorithms, and which one runs for a call.

Each module holds one algorithm's functions, written against `Ctx` (group ranks, typed 1-D
arrays, `ctx.step(sends, recvs)`); all of them produce the same bits (common.py). `select`
picks per call: KAIYUAN_COMM_ALGO if set, else kaiyuan.comm.cost.choose_algorithm over the
algorithms that implement this collective at this group size. A forced algorithm that does not
apply falls back to the one in FALLBACK, with a warning on the `kaiyuan.comm` logger.
"""

from __future__ import annotations

import logging
import os

from ...runtime.errors import UnsupportedError
from . import direct, halving_doubling, hierarchical, ring, tree

NAMES = ("ring", "halving_doubling", "tree", "direct", "hierarchical")
MODULES = {"ring": ring, "halving_doubling": halving_doubling, "tree": tree, "direct": direct,
           "hierarchical": hierarchical}
ALIASES = {"hd": "halving_doubling", "h-d": "halving_doubling", "rhd": "halving_doubling", "fullmesh": "direct",
           "mesh": "direct", "nhr": "hierarchical", "hier": "hierarchical", "binomial": "tree"}
# where an algorithm does not implement a collective (or this group size): what runs instead
FALLBACK = {"all_to_all": "direct", "broadcast": "tree", "all_gather": "ring", "reduce_scatter": "direct",
            "reduce": "direct", "all_reduce": "ring"}

log = logging.getLogger("kaiyuan.comm")
_warned: set = set()


def forced(kind: str) -> str | None:
    """KAIYUAN_COMM_ALGO: one name for every collective ("ring"), or per collective
    ("all_reduce:ring,broadcast:tree"; the others choose freely)."""
    spec = os.environ.get("KAIYUAN_COMM_ALGO", "").strip()
    if not spec:
        return None
    for part in spec.replace(";", ",").split(","):
        coll, sep, name = part.strip().rpartition(":")
        if sep and coll.strip() != kind:
            continue
        name = ALIASES.get(name.strip().lower(), name.strip().lower())
        if name not in MODULES:
            raise UnsupportedError(f"KAIYUAN_COMM_ALGO={spec!r}: unknown algorithm {name!r}",
                                   hint=f"use one of {', '.join(NAMES)}, optionally per collective: "
                                        "all_reduce:ring,broadcast:tree")
        return name
    return None


def applies(name: str, kind: str, size: int, hosts: list[int]) -> str | None:
    """None when algorithm `name` implements `kind` for this group, else the reason it does not."""
    mod = MODULES[name]
    if kind not in mod.COLLECTIVES:
        return f"{name} does not implement {kind}"
    if name == "hierarchical" and hierarchical.layout(hosts) is None:
        return "hierarchical needs several hosts with the same number of ranks, in contiguous rank blocks"
    why = getattr(mod, "unsupported", lambda k, n: None)(kind, size)
    return why


def select(kind: str, nbytes: int, group) -> tuple[str, object]:
    """(algorithm name, function) for one call of `kind` moving `nbytes` per rank on `group`."""
    hosts = group.hosts()
    name = forced(kind)
    if name is None:
        name = _cost_choice(kind, nbytes, group, hosts)
    why = applies(name, kind, group.size, hosts)
    if why is not None:
        fallback = FALLBACK[kind]
        if (name, kind, group.size) not in _warned:
            _warned.add((name, kind, group.size))
            log.warning("kaiyuan.comm: %s; running %s with %s instead", why, kind, fallback)
        name = fallback
    fn = MODULES[name].COLLECTIVES[kind]
    if name == "hierarchical":
        grid = hierarchical.layout(hosts)
        return name, lambda ctx, *a: fn(ctx, *a, grid)
    return name, fn


def _cost_choice(kind: str, nbytes: int, group, hosts: list[int]) -> str:
    from ..cost import Topology, choose_algorithm

    intra = "local" if group.backend == "local" else "shm"
    counts = [hosts.count(h) for h in sorted(set(hosts), key=hosts.index)]
    if len(counts) == 1:
        topo = Topology.local_host(group.size, transport=intra)
    else:
        topo = Topology.hosts(counts, intra=intra if group.backend != "mpi" else "mpi", inter="mpi")
    candidates = [n for n in NAMES if applies(n, kind, group.size, hosts) is None]
    return choose_algorithm(kind, nbytes, group.size, topo, candidates=candidates)
