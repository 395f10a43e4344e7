"""ONNX backend node tests through kaiyuan.InferenceSession: every case, a table per operator.

    .venv/bin/python bench/onnx_conformance.py [--device cpu] [--op Conv --op Relu] [--timeout 300]

Runs every in-scope case (tests/graph/test_onnx_backend.py says which, how cases outside opsets
13-21 are re-stamped, and how outputs are compared; tests/graph/onnx_backend_expected.py lists
the expected failures) and prints, per operator: cases, passed, expected failures, unexpected
failures, skipped. Writes bench/results/onnx_conformance.json with every case's outcome, its
error's first line and the kaiyuan source file the error came from (so failures can be routed
to the file's owner). A case that fails only because a value input (axes, shape, pads, K...) is a
graph input, which kaiyuan's ahead-of-time plans cannot take, is run once more with those inputs
made initialisers ("frozen" in the JSON): that tells an operator's bug from the graph engine's
limit. The frozen rerun is a diagnostic only; it never counts as a pass.

Cases run in a forked worker process: a kernel that crashes the process (a segfault in generated
code) or hangs past --timeout costs that case, not the run; the worker is then restarted.
"""

from __future__ import annotations

import argparse
import collections
import copy
import multiprocessing as mp
import os
import sys
import time
import traceback
from pathlib import Path

import onnx
import onnx.numpy_helper

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import RESULTS, machine, table, write_json  # noqa: E402
from tests.graph import test_onnx_backend as conf  # noqa: E402
from tests.graph.onnx_backend_expected import EXPECTED_FAILURES  # noqa: E402


def blame(exc: BaseException) -> str:
    """Where an error came from, for routing: the innermost frame in kaiyuan's ops/ or graph/
    (errors.py, which only renames errors, skipped) of the innermost exception in the chain that
    has one; "test" when the comparison failed (wrong values)."""
    chain, e = [], exc
    while e is not None and e not in chain:
        chain.append(e)
        e = e.__cause__ or e.__context__
    for e in reversed(chain):
        files = [f.filename.replace(os.sep, "/").split("/src/kaiyuan/", 1)[-1]
                 for f in traceback.extract_tb(e.__traceback__) if "/src/kaiyuan/" in f.filename.replace(os.sep, "/")]
        owned = [f for f in files if f.startswith(("ops/", "graph/")) and not f.endswith("errors.py")]
        if owned:
            return owned[-1]
    return "test" if isinstance(exc, AssertionError) else "?"


def first_line(exc: BaseException) -> str:
    """The error's first line; for a value mismatch, numpy's summary lines too."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    if isinstance(exc, AssertionError):
        keep = [ln for ln in lines if ln.startswith(("Mismatched", "Max absolute", "Max relative", "output"))]
        return "; ".join(lines[:1] + keep)[:300]
    return (lines or [""])[0][:300]


PLAN_TIME_VALUE = "must be known when the model is planned"


def frozen(name: str, device: str) -> str:
    """Diagnostic for a case that fails only because a value input (axes, shape, pads...) is a
    graph input: run it again with those inputs made initialisers, per data set."""
    import kaiyuan
    from kaiyuan.ops.schema import lookup

    p, tc = conf.prepare(name), conf.all_cases()[name]
    opset = conf.opset_of(p.model)
    value_names = set()
    for node in p.model.graph.node:
        try:
            d = lookup(node.op_type, opset, node.domain)
        except Exception:  # noqa: BLE001 - an unknown op fails the rerun anyway
            continue
        value_names |= {node.input[i] for i in d.value_inputs if i < len(node.input)}
    try:
        for inputs, outputs in tc.data_sets:
            model = copy.deepcopy(p.model)
            feeds = conf.feeds(model, inputs)
            fixed = {n: feeds.pop(n) for n in list(feeds) if n in value_names}
            model.graph.initializer.extend(onnx.numpy_helper.from_array(a, n) for n, a in fixed.items())
            keep = [v for v in model.graph.input if v.name not in fixed]
            del model.graph.input[:]
            model.graph.input.extend(keep)
            got = kaiyuan.InferenceSession(model, device=device).run(None, feeds)
            conf.compare(got, outputs, tc.rtol, tc.atol)
    except Exception as e:  # noqa: BLE001 - recorded
        return f"fails: {type(e).__name__}: {first_line(e)} [{blame(e)}]"
    return "passes"


def run_one(name: str, device: str) -> dict:
    """Outcome of one prepared case: passed, or failed with the error's class, line and source."""
    t0 = time.perf_counter()
    try:
        conf.run_case(conf.prepare(name), device)
        out = {"ok": True}
    except Exception as e:  # noqa: BLE001 - every failure is recorded, none stops the run
        out = {"ok": False, "error": type(e).__name__, "message": first_line(e), "source": blame(e)}
    if PLAN_TIME_VALUE in out.get("message", ""):  # outside the except: its error must not chain to e
        out["frozen"] = frozen(name, device)
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out


def _worker(names, device, conn):
    for name in names:
        conn.send((name, run_one(name, device)))
    conn.send(None)


def run_all(names: list[str], device: str, timeout: float) -> dict:
    """name → outcome, each case in a forked worker that is restarted after a crash or hang."""
    ctx = mp.get_context("fork")
    results: dict = {}
    todo = list(names)
    while todo:
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_worker, args=(todo, device, child), daemon=True)
        proc.start()
        child.close()
        while todo:
            if not parent.poll(timeout):
                proc.kill()
                results[todo.pop(0)] = {"ok": False, "error": "Timeout", "message": f"over {timeout:.0f} s",
                                        "source": "?"}
                break
            try:
                msg = parent.recv()
            except EOFError:  # the worker died inside todo[0]
                proc.join()
                results[todo.pop(0)] = {"ok": False, "error": "Crash", "source": "?",
                                        "message": f"worker process died (exit code {proc.exitcode})"}
                break
            if msg is None:
                break
            name, outcome = msg
            results[name] = outcome
            todo.remove(name)
            mark = "." if outcome["ok"] else "F"
            print(mark, end="", flush=True)
        proc.join(1)
    print()
    return results


def classify(p, outcome) -> str:
    if p.skip is not None:
        return "skipped"
    expected = EXPECTED_FAILURES.get(p.name)
    if outcome["ok"]:
        return "unexpected-pass" if expected else "passed"
    if expected and expected.error == outcome["error"]:
        return "expected-fail"
    return "unexpected-fail"


def report(prepared, results) -> dict:
    """Per-op table on stdout; the JSON document."""
    kinds = ("passed", "expected-fail", "unexpected-fail", "unexpected-pass", "skipped")
    per_op: dict = collections.defaultdict(collections.Counter)
    cases = {}
    for p in prepared:
        kind = classify(p, results.get(p.name, {}))
        per_op[p.op][kind] += 1
        cases[p.name] = {"op": p.op, "opset": p.opset, "restamped_from": p.restamped_from, "outcome": kind,
                         "skip": p.skip, "expected": (EXPECTED_FAILURES[p.name].why if p.name in EXPECTED_FAILURES
                                                      else None), **results.get(p.name, {})}
    rows = [[op, sum(c.values())] + [c[k] for k in kinds] for op, c in sorted(per_op.items())]
    total = collections.Counter()
    for c in per_op.values():
        total.update(c)
    rows.append(["TOTAL", sum(total.values())] + [total[k] for k in kinds])
    print(table(rows, ["op", "cases"] + list(kinds)))
    return {"summary": dict(total), "per_op": {op: dict(c) for op, c in per_op.items()}, "cases": cases}


def print_failures(doc: dict) -> None:
    """Unexpected outcomes grouped by the kaiyuan source file they came from."""
    by_source = collections.defaultdict(list)
    for name, c in doc["cases"].items():
        if c["outcome"] in ("unexpected-fail", "unexpected-pass"):
            by_source[c.get("source", "-") if c["outcome"] == "unexpected-fail" else "expected list"].append(name)
    for source, names in sorted(by_source.items()):
        print(f"\n{source}:")
        for n in sorted(names):
            c = doc["cases"][n]
            extra = f"  [value inputs frozen: {c['frozen']}]" if c.get("frozen") else ""
            print(f"  {n}: {c['outcome']}: {c.get('error', '')}: {c.get('message', '')}{extra}")


def print_summary(doc: dict) -> None:
    """The headline counts: cases, passed, expected failures by reason, unexpected by source."""
    cases = doc["cases"].values()
    count = collections.Counter(c["outcome"] for c in cases)
    ran = [c for c in cases if c["skip"] is None]
    print(f"\n{len(doc['cases'])} in-scope cases; {len(ran)} run at opsets 13-21 "
          f"({sum(c['restamped_from'] is not None for c in ran)} of them re-stamped), "
          f"{count['skipped']} skipped (opset outside 13-21)")
    print(f"passed {count['passed']}, expected failures {count['expected-fail']}, "
          f"unexpected failures {count['unexpected-fail']}, unexpected passes {count['unexpected-pass']}")
    for key, label in (("expected", "expected failures by reason"), ("source", "unexpected failures by source")):
        want = "expected-fail" if key == "expected" else "unexpected-fail"
        groups = collections.Counter(c.get(key) for c in cases if c["outcome"] == want)
        if groups:
            print(f"{label}:")
            for k, n in groups.most_common():
                print(f"  {n:4d}  {k}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--op", action="append", help="only these operators (repeatable)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds one case may take")
    ap.add_argument("--out", default=str(RESULTS / "onnx_conformance.json"))
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    prepared = [conf.prepare(n) for n in sorted(conf.all_cases())]
    prepared = [p for p in prepared if p.skip not in ("operator not in scope", "domain other than ai.onnx")]
    if args.op:
        prepared = [p for p in prepared if p.op in set(args.op)]
    runnable = [p.name for p in prepared if p.skip is None]
    print(f"{len(prepared)} in-scope cases, {len(runnable)} runnable at opsets 13-21 "
          f"({sum(p.restamped_from is not None for p in prepared)} re-stamped); device {args.device}")
    results = run_all(runnable, args.device, args.timeout)
    doc = report(prepared, results)
    doc["native_vs_restamped"] = {
        k: dict(collections.Counter(c["outcome"] for c in doc["cases"].values()
                                    if (c["restamped_from"] is not None) == (k == "restamped") and c["skip"] is None))
        for k in ("native", "restamped")}
    print_failures(doc)
    print_summary(doc)
    doc.update(device=args.device, seconds=round(time.perf_counter() - t0, 1), machine=machine(),
               tolerance="outputs: same count, dtype and shape; floats assert_allclose(rtol=1e-3, atol=1e-7) "
                         "(bfloat16 rtol 2**-6, float16 2**-9), NaN==NaN; integers and bools exact")
    print(f"\nwrote {write_json(args.out, doc)} ({doc['seconds']} s)")


if __name__ == "__main__":
    main()
