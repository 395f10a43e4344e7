"""Transports move bytes between ranks; algorithms (../algorithms) decide which bytes go where.

Every transport implements `Transport`: one `exchange` of sends and receives that progresses them
all together until done or a deadline, plus what the fault messages need to know about peers.

- `local` (local.py): ranks are threads of one process; messages are queued copies.
- `shm` (shm.py): processes on one host; chunked, pipelined ring buffers in shared memory.
- `mpi` (mpi.py): processes anywhere through mpi4py.
"""

from .base import Transport

__all__ = ["Transport", "create"]


def create(backend: str, **kwargs) -> Transport:
    """The transport for `backend` (imported only when used: mpi4py is optional)."""
    if backend == "local":
        from .local import LocalTransport

        return LocalTransport.join(**kwargs)
    if backend == "shm":
        from .shm import ShmTransport

        return ShmTransport.join(**kwargs)
    if backend == "mpi":
        from .mpi import MpiTransport

        return MpiTransport.join(**kwargs)
    from ...runtime.errors import UnsupportedError

    raise UnsupportedError(f"unknown kaiyuan.comm backend {backend!r}", hint="use 'local', 'shm' or 'mpi'")
