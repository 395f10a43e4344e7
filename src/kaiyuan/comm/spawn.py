"""spawn_threads: run a function on N ranks that are threads of this process (backend "local"),
the in-process counterpart of torch.multiprocessing.spawn."""

from __future__ import annotations

import threading
import uuid

from ..runtime.errors import CommError


def spawn_threads(fn, world_size: int, args=(), *, timeout=60.0, join_timeout: float | None = None) -> list:
    """Call fn(rank, *args) on `world_size` threads, each with the default process group
    initialized (backend "local", collectives time out after `timeout` seconds). Returns the
    results by rank. If a rank raised, re-raises its error after every thread ended (a root cause
    first: the lowest rank whose error is not a CommError, else the lowest rank's); a rank that
    raises marks itself failed, so ranks waiting for it raise CommError at once."""
    from .api import destroy_process_group, init_process_group
    from .state import current

    name = f"local://spawn-{uuid.uuid4().hex[:12]}"
    results: list = [None] * world_size
    errors: dict[int, BaseException] = {}

    def body(rank: int) -> None:
        try:
            init_process_group("local", init_method=name, rank=rank, world_size=world_size, timeout=timeout)
            try:
                results[rank] = fn(rank, *args)
            except BaseException as e:
                errors[rank] = e
                current().transport.mark_failed(f"raised {type(e).__name__}: {e}")
            finally:
                destroy_process_group()
        except BaseException as e:  # init failed
            errors.setdefault(rank, e)

    threads = [threading.Thread(target=body, args=(r,), name=f"kaiyuan-rank{r}", daemon=True)
               for r in range(world_size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(join_timeout)
    alive = [r for r, t in enumerate(threads) if t.is_alive()]
    if alive:
        raise CommError(f"spawn_threads: rank(s) {alive} still running after {join_timeout} s", ranks=alive,
                        reason="timeout")
    if errors:
        causes = [r for r in sorted(errors) if not isinstance(errors[r], CommError)] or sorted(errors)
        raise errors[causes[0]]
    return results
