"""Work: the handle an `async_op=True` call returns (torch.distributed's Work), and the per-group
lanes that run operations in the order they were issued."""

from __future__ import annotations

import threading
from collections import deque

from ..runtime.errors import CommError


class Work:
    """A pending collective or point-to-point operation."""

    def __init__(self, name: str):
        self.name = name
        self._done = threading.Event()
        self._exc: BaseException | None = None
        self._result = None

    def _finish(self, result=None, exc: BaseException | None = None) -> None:
        self._result, self._exc = result, exc
        self._done.set()

    def is_completed(self) -> bool:
        """True once the operation finished (successfully or not); never blocks."""
        return self._done.is_set()

    def is_success(self) -> bool:
        return self._done.is_set() and self._exc is None

    def exception(self) -> BaseException | None:
        return self._exc

    def wait(self, timeout=None) -> bool:
        """Block until done and re-raise its error. `timeout` (seconds or timedelta) bounds the wait
        itself; the operation keeps its own deadline from the process group's timeout."""
        from .api import as_seconds

        limit = None if timeout is None else as_seconds(timeout)
        if not self._done.wait(limit):
            raise CommError(f"{self.name} did not complete within {limit:g} s of Work.wait", collective=self.name,
                            reason="timeout", hint="the operation continues; wait again or raise the timeout")
        if self._exc is not None:
            raise self._exc
        return True

    def result(self):
        self.wait()
        return self._result


class Completed(Work):
    """A Work for an operation that already ran (sync calls that return a handle, non-members)."""

    def __init__(self, name: str, result=None):
        super().__init__(name)
        self._finish(result)


class Lane:
    """Runs one group's operations in issue order: async ones on a worker thread (started on first
    use), sync ones inline once the queue is empty — so ranks that issue the same calls in the
    same order exchange messages in the same order."""

    def __init__(self, name: str):
        self.name = name
        self._cv = threading.Condition()
        self._queue: deque = deque()
        self._busy = 0  # queued or running on the worker
        self._thread: threading.Thread | None = None

    def submit(self, fn, work: Work) -> Work:
        with self._cv:
            self._queue.append((fn, work))
            self._busy += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=f"kaiyuan-comm-{self.name}", daemon=True)
                self._thread.start()
            self._cv.notify_all()
        return work

    def run(self, fn):
        self.drain()
        return fn()

    def drain(self) -> None:
        with self._cv:
            while self._busy:
                self._cv.wait()

    def _loop(self):
        while True:
            with self._cv:
                while not self._queue:
                    self._cv.wait()
                fn, work = self._queue.popleft()
            if fn is None:
                return
            try:
                work._finish(fn())
            except BaseException as e:  # delivered to whoever waits on the Work
                work._finish(exc=e)
            with self._cv:
                self._busy -= 1
                self._cv.notify_all()

    def stop(self):
        with self._cv:
            if self._thread is not None:
                self._queue.append((None, None))
                self._cv.notify_all()
