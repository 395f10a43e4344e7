"""`kaiyuan comm-sim`: predicted collective and training-step times on a topology (kaiyuan.comm.simulate).

With no options it prints the reference comparison (docs/comm.md): a 384-device full mesh, 72
devices on a switch and 48 servers of 8 on a network, all_reduce of 1 GiB and a MoE all_to_all.
"""

from __future__ import annotations

import argparse
import json
import re

from ..runtime.errors import TopologyError

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def parse_size(text: str) -> int:
    """"1GB" = 10^9 bytes, "1GiB" = 2^30, "448MiB", "4096", "7B" (for parameter counts: 7e9), "1e6"."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-z]*)\s*", text.lower())
    if not m or m.group(2) not in _UNITS:
        raise TopologyError(f"cannot read the size {text!r}",
                            hint="write a number with an optional unit: 4096, 64KiB, 448MiB, 1GB (10^9), 1GiB (2^30)")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def parse_count(text: str) -> float:
    """A parameter count: "7B" / "7e9" / "70b" (B means billion here, not bytes)."""
    t = text.strip().lower()
    if t.endswith("b") and not t.endswith(("kb", "mb", "gb", "ib")):
        return parse_size(t[:-1] + "g")
    return float(parse_size(t))


def human(nbytes: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= size:
            return f"{nbytes / size:.4g} {unit}"
    return f"{nbytes:g} B"


def seconds(t: float) -> str:
    return f"{t * 1e3:.3f} ms" if t >= 1e-3 else f"{t * 1e6:.1f} us"


class CommSimCommand:
    help = "predict collective and training-step times on a topology (the supernode simulator)"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--topology", action="append", metavar="SPEC",
                            help="fullmesh:384, switch:72:900:1, ring:8, torus2d:16x24, fattree:64, "
                                 "switch:8:450:1/fattree:48:50:5 (INNER/OUTER); repeatable. "
                                 "Default: the reference comparison")
        parser.add_argument("--collective", action="append", metavar="NAME",
                            help="all_reduce, all_gather, reduce_scatter, broadcast, reduce, all_to_all; repeatable")
        parser.add_argument("--size", action="append", metavar="BYTES", help="per-rank input, e.g. 1GiB, 448MiB, 4KB")
        parser.add_argument("--algo", help="only this algorithm")
        parser.add_argument("--dp", metavar="PARAMS", help="also a data-parallel step of a model of PARAMS (e.g. 7B)")
        parser.add_argument("--tp", metavar="PARAMS", help="also a tensor-parallel step of a GPT-like model of PARAMS")
        parser.add_argument("--tokens", type=float, default=8192, help="tokens per device per step (--dp; default 8192)")
        parser.add_argument("--seq", type=int, default=4096, help="sequence length (--tp; default 4096)")
        parser.add_argument("--tflops", type=float, default=400.0, help="device TFLOP/s for compute (default 400)")
        parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
        parser.add_argument("--calibrate", action="store_true",
                            help="measure the shm transport's alpha/beta/gamma on this host and store them")

    @staticmethod
    def run(args) -> int:
        from ..comm import simulate

        if args.calibrate:
            from ..comm.simulate.calibrate import calibrate_shm

            report = calibrate_shm()
            print(json.dumps(report, indent=2) if args.json else report["table"])
            return 0
        if args.topology:
            topos = {spec: simulate.parse(spec) for spec in args.topology}
        else:
            topos = simulate.comparison()
        cases = _cases(args)
        results = [simulate.collective(t, c, s, args.algo) for t in topos.values() for c, s in cases]
        steps = _steps(args, topos)
        if args.json:
            print(json.dumps({"collectives": [r.as_dict() for r in results],
                              "steps": [dict(topology=k, **s.as_dict()) for k, s in steps]}, indent=2))
            return 0
        labels = {t.name: label for label, t in topos.items()}
        print(_table(results, labels))
        if not args.topology:
            moe = simulate.spec.MOE
            print(f"\nall_to_all size: MoE dispatch, {moe['tokens']} tokens x top-{moe['top_k']} x hidden "
                  f"{moe['hidden']} x {moe['dtype_bytes']} B per rank")
        for label, s in steps:
            d = s.as_dict()
            print(f"\n{label}: {d['kind']} step: compute {seconds(d['compute_s'])}, communication "
                  f"{seconds(d['comm_s'])}, exposed {seconds(d['exposed_s'])}, step {seconds(d['step_s'])} "
                  f"({', '.join(f'{k}={v}' for k, v in d.items() if k in ('buckets', 'algorithm', 'layers', 'hidden', 'algorithms'))})")
        return 0


def _cases(args) -> list[tuple[str, int]]:
    from ..comm.simulate import moe_all_to_all_bytes

    if args.collective or args.size:
        sizes = [parse_size(s) for s in (args.size or ["1GiB"])]
        return [(c, s) for c in (args.collective or ["all_reduce"]) for s in sizes]
    return [("all_reduce", 2**30), ("all_to_all", moe_all_to_all_bytes())]


def _steps(args, topos) -> list:
    from ..comm import simulate

    out = []
    for label, t in topos.items():
        if args.dp:
            out.append((label, simulate.data_parallel(t, parse_count(args.dp), tokens_per_device=args.tokens,
                                                      device_TFLOPs=args.tflops)))
        if args.tp:
            out.append((label, simulate.tensor_parallel(t, params=parse_count(args.tp), seq=args.seq,
                                                        device_TFLOPs=args.tflops)))
    return out


def _table(results, labels) -> str:
    from ..comm.simulate import ALGORITHMS

    algos = [a for a in ALGORITHMS if any(a in r.times for r in results)]
    header = ["topology", "n", "collective", "size"] + algos + ["best", "busbw GB/s"]
    rows = []
    for r in results:
        cells = [f"{seconds(r.times[a])}{' *' if a == r.best else ''}" if a in r.times else "-" for a in algos]
        rows.append([labels.get(r.topology, r.topology), str(r.world_size), r.collective, human(r.nbytes), *cells,
                     r.best, f"{r.busbw / 1e9:.1f}"])
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]
    fmt = lambda row: "  ".join(c.ljust(w) if i < 4 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))  # noqa: E731
    return "\n".join([fmt(header), "-" * (sum(widths) + 2 * len(widths) - 2)] + [fmt(r) for r in rows])
