"""kaiyuan.comm's torch.distributed-style functions.

Ranks passed by the user (`src`, `dst`, `new_group(ranks)`) are global ranks, as in
torch.distributed; the algorithms work in group ranks. Every call checks its arguments here, in
the caller's thread, then runs on the group's lane (group.py, handles.py).
"""

from __future__ import annotations

import datetime
import os
import time
import uuid

import numpy as np

from ..runtime.errors import ArgumentError, CommError
from . import state, wire
from .algorithms import select
from .buffers import Buf, same_dtype
from .group import Ctx, ProcessGroup
from .handles import Completed, Lane, Work
from .reduce_op import ReduceOp, as_op, check_dtype

DEFAULT_TIMEOUT = 300.0


def as_seconds(timeout) -> float:
    if isinstance(timeout, datetime.timedelta):
        return timeout.total_seconds()
    t = float(timeout)
    if t <= 0:
        raise ArgumentError(f"timeout must be positive, got {timeout!r}", hint="seconds, or a datetime.timedelta")
    return t


# ---- setting up -------------------------------------------------------------------------------
def _default_backend() -> str:
    if os.environ.get("KAIYUAN_COMM_BACKEND"):
        return os.environ["KAIYUAN_COMM_BACKEND"]
    if any(k in os.environ for k in ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK")):
        return "mpi"
    return "shm"


def _env_int(name: str, given: int) -> int:
    if given is not None and given >= 0:
        return int(given)
    if name in os.environ:
        return int(os.environ[name])
    raise ArgumentError(f"init_process_group: {name.lower()} is not given and ${name} is not set",
                        hint="pass rank= and world_size=, or start the job with `kaiyuan launch -n N script.py`")


def _rendezvous_name(init_method: str | None) -> str:
    """The name all ranks of one job share: init_method 'file:///path' or 'local://name', else
    $KAIYUAN_COMM_ID (set by kaiyuan launch), else $MASTER_ADDR:$MASTER_PORT."""
    if init_method and init_method != "env://":
        return init_method.split("://", 1)[-1]
    if os.environ.get("KAIYUAN_COMM_ID"):
        return os.environ["KAIYUAN_COMM_ID"]
    if os.environ.get("MASTER_PORT"):
        return f"{os.environ.get('MASTER_ADDR', 'localhost')}:{os.environ['MASTER_PORT']}"
    return "default"


def init_process_group(backend: str | None = None, init_method: str | None = None, timeout=None,
                       world_size: int = -1, rank: int = -1, store=None, group_name: str = "", **_ignored) -> None:
    """Join the default process group. backend: "local" (threads), "shm" (processes on one host)
    or "mpi" (mpi4py; rank and size come from MPI). `timeout` (seconds or timedelta, default
    $KAIYUAN_COMM_TIMEOUT or 300 s) bounds every collective and the rendezvous itself."""
    if state.current(required=False) is not None:
        raise CommError("init_process_group: the default process group is already initialized",
                        reason="initialized", hint="call destroy_process_group() first")
    backend = (backend or _default_backend()).lower()
    seconds = as_seconds(timeout if timeout is not None else os.environ.get("KAIYUAN_COMM_TIMEOUT", DEFAULT_TIMEOUT))
    deadline = time.monotonic() + seconds
    from .transports import create

    if backend == "mpi":
        transport = create("mpi", deadline=deadline)
    else:
        r, n = _env_int("RANK", rank), _env_int("WORLD_SIZE", world_size)
        if not 0 <= r < n:
            raise ArgumentError(f"init_process_group: rank {r} is not in [0, {n})", hint="0 <= rank < world_size")
        transport = create(backend, rank=r, size=n, name=_rendezvous_name(init_method), deadline=deadline)
    world = ProcessGroup(transport, range(transport.size), 0, seconds, backend)
    state.install(state.State(backend, transport, world), per_thread=backend == "local")


def destroy_process_group(group: ProcessGroup | None = None) -> None:
    """Leave the default group (all groups) — or only forget `group`."""
    st = state.current(required=False)
    if st is None:
        return
    if group is not None and group is not st.world:
        group.lane.stop()
        return
    for g in st.groups:
        for lane in [g.lane, *g.p2p_lanes.values()]:
            lane.drain()
            lane.stop()
    st.transport.close()
    state.clear()


def is_initialized() -> bool:
    return state.current(required=False) is not None


def is_available() -> bool:
    return True


def _group(group) -> ProcessGroup:
    return state.current().world if group is None else group


def get_rank(group: ProcessGroup | None = None) -> int:
    """This process's rank in `group` (default: the world); -1 when not a member."""
    return _group(group).rank


def get_world_size(group: ProcessGroup | None = None) -> int:
    return _group(group).size


def get_backend(group: ProcessGroup | None = None) -> str:
    return _group(group).backend


def new_group(ranks=None, timeout=None, backend=None, **_ignored) -> ProcessGroup:
    """A group of the given global ranks (all ranks, if None). Every rank of the world must call
    new_group with the same arguments in the same order, as in torch.distributed; on a rank not
    in `ranks` the returned group has rank -1 and its collectives do nothing."""
    st = state.current()
    ranks = list(range(st.world.size)) if ranks is None else sorted(int(r) for r in ranks)
    if len(set(ranks)) != len(ranks) or any(not 0 <= r < st.world.size for r in ranks) or not ranks:
        raise ArgumentError(f"new_group: ranks {ranks} must be distinct global ranks in [0, {st.world.size})")
    g = ProcessGroup(st.transport, ranks, len(st.groups), st.world.timeout if timeout is None else as_seconds(timeout),
                     st.backend)
    st.groups.append(g)
    if g.rank >= 0:
        st.transport.new_group(g.gid, ranks)
    return g


# ---- running one call ---------------------------------------------------------------------------
def _run(g: ProcessGroup, kind: str, header: wire.Header, nbytes: int, body, async_op: bool, op=ReduceOp.SUM):
    """Run body(ctx, algorithm_fn) as collective `kind` on group g, sync or as a Work."""

    def job():
        name, fn = select(kind if kind != "barrier" else "all_reduce", nbytes, g)
        ctx = Ctx(g, kind, header, op)
        ctx.algorithm = name
        g.transport.note(g.gid, header.seq, kind)
        return body(ctx, fn)

    if async_op:
        return g.lane.submit(job, Work(f"{kind} #{header.seq}"))
    g.lane.run(job)
    return None


def _member(group, kind: str, async_op: bool):
    g = _group(group)
    if g.rank < 0:
        return g, (Completed(kind) if async_op else None), True
    return g, None, False


def _next(g: ProcessGroup) -> int:
    g.seq += 1
    return g.seq - 1


def _group_rank(g: ProcessGroup, r: int, what: str) -> int:
    if r not in g.ranks:
        raise ArgumentError(f"{what}={r} is not a rank of the group {g.ranks}",
                            hint="src/dst are global ranks, as in torch.distributed")
    return g.ranks.index(r)


# ---- collectives --------------------------------------------------------------------------------
def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op: bool = False):
    """Reduce `tensor` across the group, in place on every rank."""
    g, done, skip = _member(group, "all_reduce", async_op)
    if skip:
        return done
    op = as_op(op)
    buf = Buf(tensor, "all_reduce(tensor)")
    check_dtype(op, buf.dtype)
    h = wire.make("all_reduce", _next(g), buf.dtype, buf.numel, int(op))

    def body(ctx, fn):
        fn(ctx, buf.flat)
        buf.commit()

    return _run(g, "all_reduce", h, buf.flat.nbytes, body, async_op, op)


def reduce(tensor, dst: int, op=ReduceOp.SUM, group=None, async_op: bool = False):
    """Reduce `tensor` across the group into rank `dst`'s tensor; the others' are unchanged."""
    g, done, skip = _member(group, "reduce", async_op)
    if skip:
        return done
    op, root = as_op(op), _group_rank(g, dst, "dst")
    buf = Buf(tensor, "reduce(tensor)")
    check_dtype(op, buf.dtype)
    h = wire.make("reduce", _next(g), buf.dtype, buf.numel, int(op), root)

    def body(ctx, fn):
        fn(ctx, buf.flat, root)
        if ctx.rank == root:
            buf.commit()

    return _run(g, "reduce", h, buf.flat.nbytes, body, async_op, op)


def broadcast(tensor, src: int, group=None, async_op: bool = False):
    """Copy rank `src`'s tensor into every rank's."""
    g, done, skip = _member(group, "broadcast", async_op)
    if skip:
        return done
    root = _group_rank(g, src, "src")
    buf = Buf(tensor, "broadcast(tensor)")
    h = wire.make("broadcast", _next(g), buf.dtype, buf.numel, 0, root)

    def body(ctx, fn):
        fn(ctx, buf.flat, root)
        if ctx.rank != root:
            buf.commit()

    return _run(g, "broadcast", h, buf.flat.nbytes, body, async_op)


def _gather_into(g, out_flat, inp: Buf, commit, async_op):
    h = wire.make("all_gather", _next(g), inp.dtype, inp.numel)

    def body(ctx, fn):
        fn(ctx, out_flat, inp.flat)
        commit()

    return _run(g, "all_gather", h, inp.flat.nbytes, body, async_op)


def all_gather(tensor_list: list, tensor, group=None, async_op: bool = False):
    """tensor_list[r] ← rank r's `tensor`, on every rank."""
    g, done, skip = _member(group, "all_gather", async_op)
    if skip:
        return done
    inp = Buf(tensor, "all_gather(tensor)", writable=False)
    outs = _outputs(tensor_list, g.size, inp, "all_gather(tensor_list)")
    flat = np.empty(inp.numel * g.size, inp.dtype)

    def commit():
        for r, o in enumerate(outs):
            o.flat[...] = flat[r * inp.numel:(r + 1) * inp.numel]
            o.commit()

    return _gather_into(g, flat, inp, commit, async_op)


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op: bool = False):
    """output_tensor (group size × input's elements, rank-major) ← every rank's input_tensor."""
    g, done, skip = _member(group, "all_gather", async_op)
    if skip:
        return done
    inp = Buf(input_tensor, "all_gather_into_tensor(input_tensor)", writable=False)
    out = Buf(output_tensor, "all_gather_into_tensor(output_tensor)")
    if out.numel != inp.numel * g.size or out.dtype != inp.dtype:
        raise ArgumentError(f"all_gather_into_tensor: output has {out.numel} {out.dtype}, needs "
                            f"{inp.numel * g.size} {inp.dtype} (group size × input)")
    return _gather_into(g, out.flat, inp, out.commit, async_op)


def _outputs(tensor_list, n: int, like: Buf, what: str) -> list[Buf]:
    if len(tensor_list) != n:
        raise ArgumentError(f"{what} has {len(tensor_list)} tensors; the group has {n} ranks",
                            hint="one tensor per rank of the group")
    outs = [Buf(t, f"{what}[{i}]") for i, t in enumerate(tensor_list)]
    for i, o in enumerate(outs):
        if o.numel != like.numel or o.dtype != like.dtype:
            raise ArgumentError(f"{what}[{i}] has {o.numel} {o.dtype}; expected {like.numel} {like.dtype}",
                                hint="every tensor of the list must match the other argument")
    return outs


def reduce_scatter(output, input_list: list, op=ReduceOp.SUM, group=None, async_op: bool = False):
    """output ← the reduction over ranks of their input_list[this rank]."""
    g, done, skip = _member(group, "reduce_scatter", async_op)
    if skip:
        return done
    op = as_op(op)
    out = Buf(output, "reduce_scatter(output)")
    ins = _outputs(input_list, g.size, out, "reduce_scatter(input_list)")
    inp = np.concatenate([b.flat for b in ins]) if ins else np.empty(0, out.dtype)
    return _reduce_scatter(g, out, inp, op, async_op)


def reduce_scatter_tensor(output, input, op=ReduceOp.SUM, group=None, async_op: bool = False):
    """output ← the reduction over ranks of block `rank` of `input` (group size × output)."""
    g, done, skip = _member(group, "reduce_scatter", async_op)
    if skip:
        return done
    op = as_op(op)
    out, inb = Buf(output, "reduce_scatter_tensor(output)"), Buf(input, "reduce_scatter_tensor(input)", False)
    if inb.numel != out.numel * g.size or inb.dtype != out.dtype:
        raise ArgumentError(f"reduce_scatter_tensor: input has {inb.numel} {inb.dtype}, needs "
                            f"{out.numel * g.size} {out.dtype} (group size × output)")
    return _reduce_scatter(g, out, inb.flat, op, async_op)


def _reduce_scatter(g, out: Buf, inp: np.ndarray, op, async_op):
    check_dtype(op, out.dtype)
    h = wire.make("reduce_scatter", _next(g), out.dtype, out.numel, int(op))

    def body(ctx, fn):
        fn(ctx, out.flat, inp)
        out.commit()

    return _run(g, "reduce_scatter", h, inp.nbytes, body, async_op, op)


def all_to_all(output_list: list, input_list: list, group=None, async_op: bool = False):
    """output_list[r] ← rank r's input_list[this rank]; sizes may differ per pair (uneven), but
    what rank r sends this rank must fit output_list[r] exactly."""
    g, done, skip = _member(group, "all_to_all", async_op)
    if skip:
        return done
    if len(output_list) != g.size or len(input_list) != g.size:
        raise ArgumentError(f"all_to_all: {len(output_list)} outputs and {len(input_list)} inputs for a group of "
                            f"{g.size}", hint="one tensor per rank in each list")
    outs = [Buf(t, f"all_to_all(output_list)[{i}]") for i, t in enumerate(output_list)]
    ins = [Buf(t, f"all_to_all(input_list)[{i}]", writable=False) for i, t in enumerate(input_list)]
    dtype = same_dtype(outs + ins, "all_to_all")
    h = wire.make("all_to_all", _next(g), dtype, wire.ANY)

    def body(ctx, fn):
        fn(ctx, [o.flat for o in outs], [b.flat for b in ins])
        for o in outs:
            o.commit()

    return _run(g, "all_to_all", h, sum(b.flat.nbytes for b in ins), body, async_op)


def all_to_all_single(output, input, output_split_sizes=None, input_split_sizes=None, group=None,
                      async_op: bool = False):
    """all_to_all on one tensor each: `input` split along dim 0 (equally, or by input_split_sizes)."""
    g = _group(group)
    if g.rank < 0:
        return Completed("all_to_all") if async_op else None
    outs, ins = _split(output, output_split_sizes, g.size, "output"), _split(input, input_split_sizes, g.size, "input")
    return all_to_all(outs, ins, group=group, async_op=async_op)


def _split(arr, sizes, n, what):
    if not isinstance(arr, np.ndarray) or arr.ndim == 0:
        raise ArgumentError(f"all_to_all_single({what}) takes numpy arrays of at least one dimension",
                            hint="use all_to_all with lists of tensors")
    rows = arr.shape[0]
    sizes = [rows // n] * n if sizes is None else [int(s) for s in sizes]
    if sum(sizes) != rows or len(sizes) != n:
        raise ArgumentError(f"all_to_all_single: {what} split sizes {sizes} do not cover its {rows} rows in {n} parts")
    offs = np.cumsum([0] + sizes)
    return [arr[offs[i]:offs[i + 1]] for i in range(n)]


def barrier(group=None, async_op: bool = False, device_ids=None):
    """Return once every rank of the group has entered the barrier."""
    g, done, skip = _member(group, "barrier", async_op)
    if skip:
        return done
    flag = np.zeros(1, np.uint8)
    h = wire.make("barrier", _next(g), flag.dtype, 1, int(ReduceOp.MAX))
    return _run(g, "barrier", h, 1, lambda ctx, fn: fn(ctx, flag), async_op, ReduceOp.MAX)


# ---- point to point -------------------------------------------------------------------------------
def _p2p(kind: str, tensor, peer: int, group, tag: int, async_op: bool):
    g = _group(group)
    if g.rank < 0:
        raise ArgumentError(f"{kind}: this rank is not in the group {g.ranks}")
    p = _group_rank(g, peer, "dst" if kind == "send" else "src")
    if p == g.rank:
        raise ArgumentError(f"{kind} to itself (rank {peer})", hint="copy the tensor instead")
    buf = Buf(tensor, f"{kind}(tensor)", writable=kind == "recv")
    lane_key = (kind, p, int(tag))
    n = g.p2p_seq.get(lane_key, 0)
    g.p2p_seq[lane_key] = n + 1
    h = wire.make("send", n, buf.dtype, buf.numel)
    lane = g.p2p_lanes.get(lane_key) or g.p2p_lanes.setdefault(lane_key, Lane(f"g{g.gid}-{kind}{p}-t{tag}"))

    def job():
        ctx = Ctx(g, kind, h, key=(g.gid, 1 + int(tag)))
        ctx.algorithm = "p2p"
        if kind == "send":
            ctx.step([(p, buf.flat)])
        else:
            ctx.step((), [(p, buf.flat)])
            buf.commit()

    if async_op:
        return lane.submit(job, Work(f"{kind} #{n} {'to' if kind == 'send' else 'from'} rank {peer}"))
    lane.run(job)
    return None


def send(tensor, dst: int, group=None, tag: int = 0) -> None:
    """Send `tensor` to global rank `dst` (matched by its recv with the same tag, in order)."""
    _p2p("send", tensor, dst, group, tag, False)


def recv(tensor, src: int, group=None, tag: int = 0) -> int:
    """Receive into `tensor` from global rank `src`; returns src."""
    if src is None:
        raise ArgumentError("recv from any source is not supported", hint="name the sender: recv(t, src=r)")
    _p2p("recv", tensor, src, group, tag, False)
    return src


def isend(tensor, dst: int, group=None, tag: int = 0) -> Work:
    return _p2p("send", tensor, dst, group, tag, True)


def irecv(tensor, src: int, group=None, tag: int = 0) -> Work:
    return _p2p("recv", tensor, src, group, tag, True)


def new_id() -> str:
    """A fresh rendezvous name (what `kaiyuan launch` puts in $KAIYUAN_COMM_ID)."""
    return f"ky-{uuid.uuid4().hex[:12]}"
