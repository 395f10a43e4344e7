"""Streams (in-order work queues) and events (markers in a stream), CUDA-style.

Each device has a *default* stream that runs work at once in the caller's thread, so the common
synchronous case costs nothing and results on host arrays are visible immediately. A stream the
user creates runs its work in order on its own daemon worker thread; an error raised there is
kept and re-raised by the stream's next `synchronize()` or `submit()`. No wait blocks forever:
every wait gives up after $KAIYUAN_SYNC_TIMEOUT seconds (default 600) with a DeviceError.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import deque
from contextlib import contextmanager
from typing import Callable

from .errors import DeviceError, KaiyuanError

_STOP = object()


def sync_timeout() -> float:
    return float(os.environ.get("KAIYUAN_SYNC_TIMEOUT", "600"))


def _timeout_error(what: str) -> DeviceError:
    return DeviceError(f"timed out after {sync_timeout():g} s waiting for {what}",
                       hint="work queued on a stream never finished (a deadlock between streams "
                            "waiting on each other's events?); raise KAIYUAN_SYNC_TIMEOUT if it is just slow")


class _WorkQueue:
    """The state a user stream shares with its worker thread (the worker never holds the Stream)."""

    def __init__(self):
        self.cond = threading.Condition()
        self.items: deque = deque()
        self.submitted = self.done = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        while True:
            with self.cond:
                while not self.items:
                    self.cond.wait()
                fn = self.items.popleft()
            if fn is _STOP:
                return
            try:
                fn()
            except BaseException as e:  # kept for the stream's owner; the first error wins
                with self.cond:
                    self.error = self.error or e
            with self.cond:
                self.done += 1
                self.cond.notify_all()


class Stream:
    """An in-order queue of work on one device. `Stream()` makes a new asynchronous stream."""

    def __init__(self, device=None, *, _default: bool = False):
        from .registry import get_device

        self.device = get_device(device)
        self.is_default = _default
        self._q = _WorkQueue()
        if not _default:
            worker = threading.Thread(target=self._q.run, name=f"kaiyuan-stream-{self.device.name}", daemon=True)
            worker.start()
            weakref.finalize(self, _stop_worker, self._q)
            _streams_of(self.device.name).add(self)

    def submit(self, fn: Callable[[], object]) -> None:
        """Queue `fn()` after everything already on this stream."""
        self._raise_pending()
        if self.is_default:
            fn()
            return
        with self._q.cond:
            self._q.items.append(fn)
            self._q.submitted += 1
            self._q.cond.notify_all()

    def synchronize(self) -> None:
        """Wait until all submitted work ran; re-raise the first error it raised."""
        q = self._q
        with q.cond:
            target = q.submitted
            if not q.cond.wait_for(lambda: q.done >= target, timeout=sync_timeout()):
                raise _timeout_error(f"{self!r}")
        self._raise_pending()

    def query(self) -> bool:
        """True when every submitted piece of work has finished."""
        with self._q.cond:
            return self._q.done >= self._q.submitted

    def wait_event(self, event: "Event") -> None:
        """Work submitted after this call starts only once `event` has completed."""
        event.wait(self)

    def record_event(self, event: "Event | None" = None) -> "Event":
        event = event or Event()
        event.record(self)
        return event

    def _raise_pending(self) -> None:
        with self._q.cond:
            error, self._q.error = self._q.error, None
        if error is None:
            return
        if isinstance(error, KaiyuanError):
            raise error
        raise DeviceError(f"asynchronous work on {self!r} failed: {type(error).__name__}: {error}",
                          hint="the traceback of the original error is chained below") from error

    def __repr__(self) -> str:
        kind = "default " if self.is_default else ""
        return f"<{kind}Stream on {self.device.name}>"


def _stop_worker(q: _WorkQueue) -> None:
    with q.cond:
        q.items.append(_STOP)
        q.cond.notify_all()


# ---- per-device bookkeeping: user streams, default streams, the current stream ---------------

_lock = threading.Lock()
_user_streams: dict[str, weakref.WeakSet] = {}
_default_streams: dict[str, Stream] = {}
_local = threading.local()


def _streams_of(name: str) -> weakref.WeakSet:
    with _lock:
        return _user_streams.setdefault(name, weakref.WeakSet())


def default_stream(device=None) -> Stream:
    """The device's synchronous default stream."""
    from .registry import get_device

    dev = get_device(device)
    with _lock:
        s = _default_streams.get(dev.name)
        if s is None or s.device is not dev:
            s = _default_streams[dev.name] = Stream(dev, _default=True)
        return s


def current_stream(device=None) -> Stream:
    """The innermost `with ky.stream(s)` of this thread for the device, else its default stream."""
    from .registry import get_device

    dev = get_device(device)
    stacks = getattr(_local, "stacks", None)
    stack = stacks.get(dev.name) if stacks else None
    if stack:
        return stack[-1]
    s = _default_streams.get(dev.name)  # the launch hot path: no lock once the stream exists
    return s if s is not None and s.device is dev else default_stream(dev)


def on_default_stream(device) -> bool:
    """Is `device`'s current stream in this thread its default stream (no `with ky.stream(s)`)?
    The cheap question of the eager launch plans' hot path (`device`: a Device)."""
    stacks = _local.__dict__.get("stacks")
    return not (stacks and stacks.get(device.name))


@contextmanager
def stream(s: Stream | None):
    """Make `s` the current stream of its device in this thread (`None`: no change)."""
    if s is None:
        yield None
        return
    stacks = _local.__dict__.setdefault("stacks", {})
    stacks.setdefault(s.device.name, []).append(s)
    try:
        yield s
    finally:
        stacks[s.device.name].pop()


def synchronize(device=None) -> None:
    """Wait for every stream of the device; re-raise the first error one of them kept."""
    from .registry import get_device

    dev = get_device(device)
    for s in list(_streams_of(dev.name)):
        s.synchronize()


class Event:
    """A marker recorded into a stream: complete once the stream's work before it has run."""

    def __init__(self, enable_timing: bool = False):
        self.enable_timing = enable_timing
        self._done: threading.Event | None = None  # a fresh one per record()
        self._time_ns: int | None = None

    def record(self, stream: Stream | None = None) -> None:
        s = stream or current_stream()
        done = self._done = threading.Event()
        self._time_ns = None

        def reached():
            if self.enable_timing and self._done is done:
                self._time_ns = time.perf_counter_ns()
            done.set()

        s.submit(reached)

    def query(self) -> bool:
        """True when the recorded point was reached (an event never recorded counts as done)."""
        return self._done is None or self._done.is_set()

    def synchronize(self) -> None:
        done = self._done
        if done is not None and not done.wait(sync_timeout()):
            raise _timeout_error("an event")

    def wait(self, stream: Stream | None = None) -> None:
        """Work submitted to `stream` after this call waits for the event as recorded now."""
        done = self._done
        if done is None:
            return

        def block():
            if not done.wait(sync_timeout()):
                raise _timeout_error("an event another stream should record")

        (stream or current_stream()).submit(block)

    def elapsed_time(self, end: "Event") -> float:
        """Milliseconds from this event to `end`; both timed, recorded and complete."""
        for e in (self, end):
            if not e.enable_timing:
                raise DeviceError("elapsed_time needs events created with enable_timing=True",
                                  hint="ky.Event(enable_timing=True)")
            if e._done is None or not e._done.is_set() or e._time_ns is None:
                raise DeviceError("elapsed_time on an event that was not recorded or has not completed",
                                  hint="record both events, then call end.synchronize() first")
        return (end._time_ns - self._time_ns) / 1e6
