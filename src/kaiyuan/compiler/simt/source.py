"""What `emit_simt` returns: the kernel's source and what a Program needs to launch it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SimtSource:
    source: str
    kernel_name: str
    lanes: int
    local_bytes: int = 0
    asserts: list = field(default_factory=list)      # [(file:line, message)]
    params: list = field(default_factory=list)       # [("ptr" | "scalar", ir_type, ctype)]
    assert_slot: bool = False

    def to_meta(self) -> dict:
        """JSON-able launch layout (for a backend's cached meta)."""
        return {"kernel_name": self.kernel_name, "lanes": self.lanes, "local_bytes": self.local_bytes,
                "asserts": [list(a) for a in self.asserts], "params": [list(p) for p in self.params],
                "assert_slot": self.assert_slot}
