"""The contract between kaiyuan.comm's algorithms and a transport."""

from __future__ import annotations

import time
from typing import Callable, Optional, Sequence

import numpy as np

from ..wire import Header

# fold(byte_offset, incoming) combines `incoming` (uint8 bytes of the message starting at
# byte_offset) into the receive buffer instead of copying; None means copy.
Fold = Optional[Callable[[int, np.ndarray], None]]
Send = tuple  # (dst global rank, contiguous uint8 array)
Recv = tuple  # (src global rank, contiguous uint8 array to fill, Fold)


class Transport:
    """One rank's endpoint. `rank`/`size` are global (the default group's)."""

    name = "?"
    rank = 0
    size = 1
    host_of: Sequence[int] = ()  # host index of every global rank (for hierarchical algorithms)

    def exchange(self, sends: Sequence[Send], recvs: Sequence[Recv], key, header: Header, deadline: float) -> None:
        """Deliver every send and complete every receive, all progressing together.

        Receives complete in list order (a fold sees its inputs in the order the algorithm chose);
        sends proceed concurrently with them. Messages between two ranks under the same `key`
        match in FIFO order. Raises wire.WireMismatch when a message's header or size does not
        fit, wire.WireTimeout when `deadline` (time.monotonic()) passes or a peer is known dead.
        """
        raise NotImplementedError

    def note(self, gid: int, seq: int, kind: str) -> None:
        """Record that this rank started collective `seq` of group `gid` (for others' diagnostics)."""

    def reached(self, rank: int, gid: int) -> int | None:
        """The last collective sequence number global `rank` started on group `gid` (-1: none yet),
        or None when this transport cannot know (then a timeout names the peers waited on)."""
        return None

    def describe_peer(self, rank: int) -> str:
        """What is known about a global rank we wait on: died, not joined, busy elsewhere."""
        return "no answer"

    def new_group(self, gid: int, ranks: Sequence[int]) -> None:
        """Called on every member when group `gid` of global `ranks` is created."""

    def mark_failed(self, reason: str) -> None:
        """This rank is going down with an error: tell peers so they fail fast."""

    def close(self) -> None:
        pass


class Backoff:
    """Polling without burning a shared core: spin briefly, then sleep longer and longer (≤1 ms)."""

    def __init__(self):
        self.n = 0

    def reset(self):
        self.n = 0

    def wait(self):
        self.n += 1
        if self.n < 50:
            return
        time.sleep(0 if self.n < 200 else min(1e-3, 1e-6 * (self.n - 190)))
