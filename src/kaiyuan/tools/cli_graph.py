"""`kaiyuan compile` and `kaiyuan run`: the offline model compiler and runner (CANN's ATC and
its .om runner, for ONNX models and .kym files).

    kaiyuan compile model.onnx -o model.kym [--device cpu] [--shape input_ids=1x128 ...] [--dump-ir]
    kaiyuan run model.kym --inputs in.npz [--outputs out.npz] [--rebuild]
"""

from __future__ import annotations

import argparse
import time

from ..runtime.errors import ArgumentError


def parse_shape(text: str) -> tuple[str, tuple]:
    """"input_ids=1x128" → ("input_ids", (1, 128)); "x=" is a scalar."""
    name, sep, dims = text.partition("=")
    try:
        if not sep or not name:
            raise ValueError
        return name, tuple(int(d) for d in dims.split("x") if d != "")
    except ValueError:
        raise ArgumentError(f"--shape {text!r} is not NAME=DxDx...", hint="for example --shape input_ids=1x128") from None


def fixed_shapes(session, given: dict) -> dict:
    """Every input's shape: given ones, else the declared one when it has no symbolic dim."""
    shapes = {}
    for v in session.model.inputs:
        if v.name in given:
            shapes[v.name] = given[v.name]
        elif v.shape is not None and all(isinstance(d, int) for d in v.shape):
            shapes[v.name] = tuple(v.shape)
        else:
            raise ArgumentError(f"input '{v.name}' has symbolic shape {list(v.shape or [])}",
                                hint=f"give it with --shape {v.name}=" + "x".join("N" if not isinstance(d, int) else str(d)
                                                                                  for d in (v.shape or [])))
    unknown = set(given) - set(shapes)
    if unknown:
        raise ArgumentError(f"--shape names unknown input(s) {sorted(unknown)}",
                            hint=f"the model's inputs are {[v.name for v in session.model.inputs]}")
    return shapes


class CompileCommand:
    help = "compile an ONNX model into an offline .kym model"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("model", help="the ONNX model (.onnx)")
        parser.add_argument("-o", "--output", help="the .kym file to write (default: MODEL with .kym)")
        parser.add_argument("--device", default=None, help="the device to compile for (default: cpu)")
        parser.add_argument("--shape", action="append", default=[], metavar="NAME=DxD",
                            help="an input's shape (needed for every input with symbolic dims)")
        parser.add_argument("--dump-ir", action="store_true",
                            help="print the graph IR before and after each pass, and the fusions made")
        parser.add_argument("--force", action="store_true", help="replace OUTPUT even when it is not a .kym file")

    @staticmethod
    def run(args) -> int:
        from pathlib import Path

        from ..graph.kym_session import compile_to_kym
        from ..graph.session import InferenceSession

        t0 = time.perf_counter()
        sess = InferenceSession(args.model, device=args.device)
        shapes = fixed_shapes(sess, dict(parse_shape(s) for s in args.shape))
        out = Path(args.output or Path(args.model).with_suffix(".kym"))
        if out.resolve() == Path(args.model).resolve():
            raise ArgumentError(f"the output {out} is the input model", hint="choose another -o path")
        if args.dump_ir:
            print("// ---- imported\n" + sess.model.text())
        reports = compile_to_kym(sess, out, [shapes], overwrite=args.force)
        if args.dump_ir:
            for name, text in sess.last_dump:
                print(f"// ---- after {name}\n{text}")
            for line in sess.last_fusions:
                print("// fused: " + line)
        for key, report in reports.items():
            print(f"{key}: {report}")
        print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB) in {time.perf_counter() - t0:.1f} s")
        return 0


class RunCommand:
    help = "run a .kym (or ONNX) model on inputs from an .npz file"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("model", help="the model (.kym or .onnx)")
        parser.add_argument("--inputs", required=True, help="an .npz file with one array per model input")
        parser.add_argument("--outputs", help="write the outputs to this .npz file")
        parser.add_argument("--device", default=None)
        parser.add_argument("--rebuild", action="store_true",
                            help="ignore the compiled kernels in the .kym and recompile them from its IR "
                                 "(use it for files from untrusted sources)")

    @staticmethod
    def run(args) -> int:
        import numpy as np

        from ..graph.session import InferenceSession

        sess = InferenceSession(args.model, device=args.device, trust_artefacts=not args.rebuild)
        try:
            with np.load(args.inputs, allow_pickle=False) as data:
                feeds = {k: data[k] for k in data.files}
        except (OSError, ValueError) as e:
            raise ArgumentError(f"cannot read inputs {args.inputs}: {e}", hint="save them with numpy.savez") from None
        t0 = time.perf_counter()
        results = sess.run(None, feeds)
        ms = (time.perf_counter() - t0) * 1e3
        names = [o.name for o in sess.get_outputs()]
        for n, r in zip(names, results):
            print(f"{n}: {r.dtype}{list(r.shape)}")
        print(f"ran in {ms:.1f} ms")
        if args.outputs:
            np.savez(args.outputs, **dict(zip(names, results)))
        return 0
