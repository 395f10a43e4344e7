"""Where the process group lives: per process for shm and mpi, per thread for `local` (each
rank is a thread, so get_rank() must answer the calling thread's rank)."""

from __future__ import annotations

import threading

from ..runtime.errors import CommError


class State:
    def __init__(self, backend: str, transport, world):
        self.backend, self.transport, self.world = backend, transport, world
        self.groups = [world]


_process: State | None = None
_thread = threading.local()


def current(required: bool = True) -> State | None:
    st = getattr(_thread, "state", None) or _process
    if st is None and required:
        raise CommError("the default process group is not initialized", reason="not initialized",
                        hint="call kaiyuan.comm.init_process_group(...) first (or run under `kaiyuan launch`)")
    return st


def install(st: State | None, per_thread: bool) -> None:
    global _process
    if per_thread:
        _thread.state = st
    else:
        _process = st


def clear() -> None:
    global _process
    if getattr(_thread, "state", None) is not None:
        _thread.state = None
    else:
        _process = None
