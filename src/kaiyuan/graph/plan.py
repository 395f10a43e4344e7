"""Static memory planning: tensor lifetimes → offsets in one arena per run.

Stages
    1. lifetimes   every intermediate tensor lives from the step that writes it to the last step
                   that reads it (a view's reads count for the tensor it views);
    2. placement   tensors are placed largest first, each at the lowest aligned offset whose bytes
                   no tensor with an overlapping lifetime occupies (greedy best-fit by size, the
                   classic offline heuristic: large blocks fix the layout, small ones fill gaps);
    3. in place    an element-wise step may write its output over an input that dies at that step
                   (same byte size): the output then shares the input's block and lifetime.

The planner sees only sizes and step indices; what a tensor is never matters here. Graph inputs
and outputs also live in the arena (inputs are copied in, outputs copied out), so the arena is
the whole of a run's memory apart from the weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALIGN = 64  # bytes: a cache line, and enough for any vector load the kernels issue


@dataclass
class Block:
    """One tensor's bytes: written at step `start`, last read at step `end` (inclusive)."""

    key: object
    nbytes: int
    start: int
    end: int
    offset: int = -1
    members: list = field(default_factory=list)  # keys sharing this block (in-place outputs)


@dataclass
class ArenaPlan:
    offsets: dict          # tensor key -> byte offset in the arena
    size: int              # arena bytes
    total: int             # sum of every tensor's bytes (what allocating each separately costs)
    blocks: list

    def summary(self) -> str:
        saved = 1 - self.size / self.total if self.total else 0.0
        return (f"arena {self.size / 2**20:.2f} MiB for {len(self.offsets)} tensors "
                f"totalling {self.total / 2**20:.2f} MiB ({saved:.0%} saved by reuse)")


def _aligned(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def place(blocks: list[Block]) -> int:
    """Give every block an offset (stage 2); returns the arena size."""
    placed: list[Block] = []
    size = 0
    for b in sorted(blocks, key=lambda b: (-b.nbytes, b.start)):
        live = sorted((p for p in placed if p.start <= b.end and b.start <= p.end), key=lambda p: p.offset)
        offset = 0
        for p in live:
            if offset + b.nbytes <= p.offset:
                break  # fits in the gap before p
            offset = max(offset, _aligned(p.offset + p.nbytes))
        b.offset = offset
        placed.append(b)
        size = max(size, offset + b.nbytes)
    return _aligned(size)


def plan_arena(tensors: dict, reads: dict, inplace: dict | None = None) -> ArenaPlan:
    """Plan the arena.

    tensors  key -> (nbytes, step that writes it)
    reads    key -> last step that reads it (absent: never read; outputs are read at the last step)
    inplace  output key -> input key it may overwrite (only honoured when that input's last read
             is the writing step and the sizes match)
    """
    blocks: dict = {}
    owner: dict = {}
    total = 0
    for key, (nbytes, start) in sorted(tensors.items(), key=lambda kv: kv[1][1]):
        total += nbytes
        end = max(reads.get(key, start), start)
        src = (inplace or {}).get(key)
        if src is not None and src in owner:
            block = blocks[owner[src]]
            if block.end == start and tensors[src][0] == nbytes and block.nbytes == nbytes:
                block.end = end
                block.members.append(key)
                owner[key] = owner[src]
                continue
        blocks[key] = Block(key, _aligned(max(nbytes, 1)), start, end, members=[key])
        owner[key] = key
    size = place(list(blocks.values()))
    offsets = {key: blocks[owner[key]].offset for key in tensors}
    return ArenaPlan(offsets, size, total, list(blocks.values()))
