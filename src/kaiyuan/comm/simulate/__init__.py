"""kaiyuan.comm.simulate: predicted collective and training-step times on supernode-scale topologies.

    from kaiyuan.comm import simulate
    topo = simulate.hierarchical(inner=simulate.switch(8, 450, 1), outer=simulate.fattree(48, 50, 5))
    r = simulate.collective(topo, "all_reduce", 1 << 30)
    r.best, r.times["ring"]

The model (docs/comm.md, "Simulator"): each algorithm is a schedule of steps (`schedules`), each
step a set of flows routed over the topology's links (`topology`); a step costs its longest
route's latency, its most loaded link's drain time, its busiest device's message issue and
reduction time.
"""

from __future__ import annotations

from .models import collective, data_parallel, gpt_shape, tensor_parallel, CollectiveResult, StepResult
from .schedules import ALGORITHMS, COLLECTIVES
from .spec import comparison, parse, moe_all_to_all_bytes
from .topology import Fabric, fattree, fullmesh, hierarchical, ring, switch, torus2d

__all__ = ["collective", "data_parallel", "tensor_parallel", "gpt_shape", "CollectiveResult", "StepResult",
           "fullmesh", "switch", "ring", "torus2d", "fattree", "hierarchical", "Fabric", "parse", "comparison",
           "moe_all_to_all_bytes", "ALGORITHMS", "COLLECTIVES"]
