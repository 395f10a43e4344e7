"""Topologies from short text specs (for `kaiyuan comm-sim`), and the issue's reference comparison.

Spec grammar: KIND:N[:GBPS[:US]] with KIND one of fullmesh, switch, ring, fattree; torus2d:XxY[:GBPS[:US]];
INNER/OUTER for hierarchical(inner=INNER, outer=OUTER), e.g. "switch:8:450:1/fattree:48:50:5" is
48 servers of 8 devices on a switch, joined by a 50 GB/s-per-device fat tree. "fullmesh:N" caps
each device's total at the link bandwidth (port_GBps = link_GBps): any-to-any at full port speed.
"""

from __future__ import annotations

from ...runtime.errors import TopologyError
from . import topology as T

_KINDS = {"fullmesh": lambda n, bw, us: T.fullmesh(n, bw, us, port_GBps=bw), "switch": T.switch, "ring": T.ring,
          "fattree": T.fattree}
_DEFAULTS = {"fullmesh": (392.0, 1.5), "switch": (900.0, 1.0), "ring": (100.0, 1.0), "fattree": (50.0, 5.0),
             "torus2d": (100.0, 1.0)}
_HINT = ("write KIND:N[:GBps[:us]] (KIND: fullmesh, switch, ring, fattree), torus2d:XxY[:GBps[:us]], "
         "or INNER/OUTER for servers of INNER joined by OUTER, e.g. switch:8:450:1/fattree:48:50:5")


def _number(text: str, what: str, spec: str, cast=float):
    try:
        return cast(text)
    except ValueError:
        raise TopologyError(f"topology {spec!r}: {what} {text!r} is not a number", hint=_HINT) from None


def parse(spec: str) -> T.Fabric:
    """A topology from its text spec (grammar in this module's docstring)."""
    if "/" in spec:
        inner, _, outer = spec.partition("/")
        return T.hierarchical(parse(inner), parse(outer))
    kind, *fields = spec.strip().split(":")
    kind = kind.lower()
    if kind not in _DEFAULTS or not fields or len(fields) > 3:
        raise TopologyError(f"cannot read topology {spec!r}", hint=_HINT)
    bw, us = _DEFAULTS[kind]
    bw = _number(fields[1], "bandwidth", spec) if len(fields) > 1 else bw
    us = _number(fields[2], "latency", spec) if len(fields) > 2 else us
    if kind == "torus2d":
        dims = fields[0].lower().split("x")
        if len(dims) != 2:
            raise TopologyError(f"topology {spec!r}: torus2d needs XxY, got {fields[0]!r}", hint=_HINT)
        return T.torus2d(_number(dims[0], "x", spec, int), _number(dims[1], "y", spec, int), bw, us)
    return _KINDS[kind](_number(fields[0], "device count", spec, int), bw, us)


# The comparison. Bandwidths are per device and direction, from public figures:
# a 384-NPU supernode (CloudMatrix384-class, ~392 GB/s unified-bus bandwidth per NPU, any-to-any),
# an NVL72 rack (72 GPUs, NVLink 5: 900 GB/s per GPU each way, one switch hop), and 48 classic
# 8-GPU servers (NVLink 4: 450 GB/s inside; one 400 Gb/s = 50 GB/s NIC per GPU on a rail-optimised
# fat tree outside).
COMPARISON = {
    "384 full mesh (supernode)": "fullmesh:384:392:1.5",
    "72 on a switch (NVL72)": "switch:72:900:1",
    "48 servers x 8 on a network": "switch:8:450:1/fattree:48:50:5",
}

# MoE all_to_all size: a DeepSeek-V3-like dispatch, 4096 tokens per rank, each sent to 8 experts,
# hidden size 7168, bf16 (2 bytes): 4096 * 8 * 7168 * 2 bytes = 448 MiB per rank.
MOE = {"tokens": 4096, "top_k": 8, "hidden": 7168, "dtype_bytes": 2}


def moe_all_to_all_bytes(tokens: int = 4096, top_k: int = 8, hidden: int = 7168, dtype_bytes: int = 2) -> int:
    return tokens * top_k * hidden * dtype_bytes


def comparison() -> dict[str, T.Fabric]:
    return {label: parse(spec) for label, spec in COMPARISON.items()}
