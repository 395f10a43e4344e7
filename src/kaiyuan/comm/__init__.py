"""kaiyuan.comm: collective communication (kaiyuan's HCCL), with torch.distributed's API.

    import kaiyuan.comm as dist
    dist.init_process_group("shm")            # under `kaiyuan launch -n 4 script.py`
    dist.all_reduce(x, op=dist.ReduceOp.SUM)  # x: numpy array or ky.Tensor, reduced in place

Backends (transports/): "local" (ranks are threads: spawn_threads), "shm" (processes on one
host, shared memory), "mpi" (mpi4py). Algorithms (algorithms/): ring, halving_doubling, tree,
direct, hierarchical — chosen per call by kaiyuan.comm.cost, or by $KAIYUAN_COMM_ALGO; all give
bitwise-identical results. See docs/comm.md.
"""

from ..runtime.errors import CommError, CommMismatchError
from .api import (all_gather, all_gather_into_tensor, all_reduce, all_to_all, all_to_all_single, barrier, broadcast,
                  destroy_process_group, get_backend, get_rank, get_world_size, init_process_group, irecv,
                  is_available, is_initialized, isend, new_group, new_id, recv, reduce, reduce_scatter,
                  reduce_scatter_tensor, send)
from .group import ProcessGroup
from .handles import Work
from .reduce_op import ReduceOp
from .spawn import spawn_threads

__all__ = ["init_process_group", "destroy_process_group", "is_initialized", "is_available", "get_rank",
           "get_world_size", "get_backend", "new_group", "ProcessGroup", "ReduceOp", "Work", "all_reduce",
           "all_gather", "all_gather_into_tensor", "reduce_scatter", "reduce_scatter_tensor", "broadcast", "reduce",
           "all_to_all", "all_to_all_single", "send", "recv", "isend", "irecv", "barrier", "spawn_threads", "new_id",
           "CommError", "CommMismatchError"]
