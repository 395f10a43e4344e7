"""Conformance: ONNX's backend node test cases run through `kaiyuan.InferenceSession` (issue 4).

Cases come from `onnx.backend.test.case.node.collect_testcases` (in memory: onnx 1.23 ships no
data files). Only the operators in `IN_SCOPE` (onnx_backend_expected.py) count; other domains
(ai.onnx.ml, preview) are out of scope.

Opsets. kaiyuan reads ai.onnx opsets 13-21, but onnx writes each case at its operator's newest
version, so with onnx 1.23 Conv, the pools, Cast, Reshape, Transpose... are at opsets 22-28 and
And/Or/Not at 1-7. Such a case is *re-stamped* to the nearest of 13 and 21 when it is the same
model there: onnx's checker (full, strict type and shape inference) accepts it at that opset, and
onnx's reference evaluator, running that opset's operator versions, still reproduces the case's
expected outputs. Otherwise it is skipped with "opset outside 13-21". Cases written at 13-21 run
as they are. Reports keep the two apart (`Prepared.restamped_from`).

Comparison, as onnx's backend runner does: the same number of outputs, equal shapes and dtypes;
floats with `assert_allclose(rtol=case.rtol, atol=case.atol)` (1e-3 and 1e-7 for every node case),
NaN equal to NaN, bfloat16 with rtol at least 2**-6 (two ulps, as the runner does) and float16 at
least 2**-9 (two ulps too: an `_expanded` fp16 case rounds every intermediate to fp16, which a
kernel that keeps fp32 inside does not; the runner's 1e-3 is one fp16 ulp); integers and bools
exactly (the runner's allclose would let 1000 pass for 1001).

Pytest runs a fixed representative subset: per in-scope op, the first two cases by name that
are not expected failures (or the first one that is, if all are), because compiling every case's
kernels takes far longer than a test run should. `KAIYUAN_ONNX_BACKEND=all` runs every case;
`bench/onnx_conformance.py` runs every case and prints the per-operator table.
"""

from __future__ import annotations

import copy
import functools
import os
import re
import warnings
from dataclasses import dataclass

import numpy as np
import onnx
import onnx.numpy_helper
import pytest

from .onnx_backend_expected import EXPECTED_FAILURES, IN_SCOPE, NOT_SAME_AT_OLDER_OPSET

OPSETS = (13, 21)
TWO_ULPS = {"bfloat16": 2**-6, "float16": 2**-9}  # the least rtol of a 16-bit float comparison


@functools.lru_cache(maxsize=None)
def all_cases() -> dict:
    """Case name → onnx TestCase, every node case onnx can generate (slow: ~15 s, cached)."""
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return {tc.name: tc for tc in collect_testcases(None)}


def op_of(name: str) -> tuple[str, str]:
    """(domain, op type) a case tests: its node's, or for an `_expanded` case its base case's."""
    base = all_cases()[re.sub(r"_expanded.*$", "", name)]
    node = base.model.graph.node[0]
    return node.domain or "", node.op_type


def opset_of(model: onnx.ModelProto) -> int | None:
    versions = {imp.domain: imp.version for imp in model.opset_import}
    return versions.get("", versions.get("ai.onnx"))


@dataclass
class Prepared:
    """A case ready to run: `model` (re-stamped or the original), or `skip` saying why not."""

    name: str
    op: str
    opset: int | None
    model: onnx.ModelProto | None = None
    skip: str | None = None
    restamped_from: int | None = None


@functools.lru_cache(maxsize=None)
def prepare(name: str) -> Prepared:
    """Classify a case: skipped (why), run as written, or re-stamped (cached)."""
    tc = all_cases()[name]
    domain, op = op_of(name)
    v = opset_of(tc.model)
    p = Prepared(name, op, v)
    if domain not in ("", "ai.onnx") or any(imp.domain not in ("", "ai.onnx") for imp in tc.model.opset_import):
        p.skip = "domain other than ai.onnx"
    elif op not in IN_SCOPE:
        p.skip = "operator not in scope"
    elif OPSETS[0] <= v <= OPSETS[1]:
        p.model = tc.model
    elif name in NOT_SAME_AT_OLDER_OPSET:
        p.skip = f"opset outside 13-21 ({v}; {NOT_SAME_AT_OLDER_OPSET[name]})"
    else:
        target = OPSETS[1] if v > OPSETS[1] else OPSETS[0]
        p.model, why = restamp(tc, target)
        if p.model is None:
            p.skip = f"opset outside 13-21 ({v}; not the same model at {target}: {why})"
        else:
            p.restamped_from = v
    return p


def restamp(tc, target: int) -> tuple[onnx.ModelProto | None, str]:
    """The case's model at ai.onnx opset `target`, if onnx itself says it is the same model there
    (see the module docstring); else (None, why not)."""
    from onnx.reference import ReferenceEvaluator

    model = copy.deepcopy(tc.model)
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            imp.version = target
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:  # noqa: BLE001 - any checker complaint means "not valid there"
        return None, f"checker: {str(e).splitlines()[0][:120]}"
    for inputs, outputs in tc.data_sets:
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                got = ReferenceEvaluator(model).run(None, feeds(model, inputs))
            compare(got, outputs, tc.rtol, tc.atol)
        except Exception as e:  # noqa: BLE001 - the older opset means something else
            return None, f"reference evaluator: {type(e).__name__}: {str(e).strip().splitlines()[0][:120]}"
    return model, ""


def feeds(model: onnx.ModelProto, inputs) -> dict:
    """The data set's inputs by graph input name (initialisers are not fed)."""
    inits = {t.name for t in model.graph.initializer}
    names = [v.name for v in model.graph.input if v.name not in inits]
    assert len(names) == len(inputs), (names, len(inputs))
    return dict(zip(names, map(as_array, inputs)))


def as_array(x) -> np.ndarray:
    """A data set entry as numpy (onnx keeps some, e.g. float8 and bfloat16 data, as TensorProto)."""
    return onnx.numpy_helper.to_array(x) if isinstance(x, onnx.TensorProto) else np.asarray(x)


def compare(got, want, rtol: float, atol: float) -> None:
    """AssertionError unless `got` matches `want` (see the module docstring)."""
    assert len(got) == len(want), f"{len(got)} outputs, expected {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        g, w = np.asarray(g), as_array(w)
        assert g.dtype == w.dtype, f"output {i}: dtype {g.dtype}, expected {w.dtype}"
        assert g.shape == w.shape, f"output {i}: shape {g.shape}, expected {w.shape}"
        if w.dtype.kind in "fc" or w.dtype.name == "bfloat16" or w.dtype.name.startswith("float8"):
            r = max(rtol, TWO_ULPS.get(w.dtype.name, 0.0))
            np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=r, atol=atol,
                                       err_msg=f"output {i}")
        else:
            np.testing.assert_array_equal(g, w, err_msg=f"output {i}")


def run_case(p: Prepared, device: str = "cpu") -> None:
    """Run every data set of a prepared case through InferenceSession; raises on any mismatch."""
    import kaiyuan

    tc = all_cases()[p.name]
    sess = kaiyuan.InferenceSession(p.model, device=device)
    for inputs, outputs in tc.data_sets:
        got = sess.run(None, feeds(p.model, inputs))
        compare(got, outputs, tc.rtol, tc.atol)


def subset() -> list[str]:
    """The representative cases pytest runs (see the module docstring), or all with
    KAIYUAN_ONNX_BACKEND=all. Cases are prepared lazily: re-stamping runs onnx's reference."""
    by_op: dict = {}
    for name in sorted(all_cases()):
        domain, op = op_of(name)
        if domain in ("", "ai.onnx") and op in IN_SCOPE:
            by_op.setdefault(op, []).append(name)
    everything = os.environ.get("KAIYUAN_ONNX_BACKEND") == "all"
    picked = []
    for names in by_op.values():
        runnable = (n for n in names if prepare(n).skip is None)
        if everything:
            picked += runnable
            continue
        chosen, fallback = [], None
        for n in runnable:
            if n not in EXPECTED_FAILURES:
                chosen.append(n)
            fallback = fallback or n
            if len(chosen) == 2:
                break
        picked += chosen or ([fallback] if fallback else [])
    return sorted(picked)


@pytest.mark.parametrize("name", subset())
def test_onnx_node_case(name, real_registry):
    p = prepare(name)
    reason = EXPECTED_FAILURES.get(name)
    if reason is None:
        run_case(p)
        return
    try:
        run_case(p)
    except Exception as e:  # noqa: BLE001 - the class is checked against the list
        assert type(e).__name__ == reason.error, f"listed as {reason}, failed with {e!r}"
        pytest.xfail(reason.why)
    pytest.fail(f"{name} passes now: take it off EXPECTED_FAILURES ({reason.why})")


def test_expected_failures_name_real_in_scope_cases():
    """The list names only cases that exist and run here (so a stale entry is noticed)."""
    cases = all_cases()
    stale = [n for n in EXPECTED_FAILURES if n not in cases or prepare(n).skip is not None]
    assert not stale, f"EXPECTED_FAILURES lists cases that are missing or skipped: {stale}"


def test_every_registered_operator_with_cases_is_in_scope(real_registry):
    """An ai.onnx operator kaiyuan registers and onnx has node cases for is counted here."""
    tested = {op_of(n)[1] for n in all_cases()}
    missing = sorted(op for (domain, op) in real_registry if domain == "" and op in tested and op not in IN_SCOPE)
    assert not missing, f"add to IN_SCOPE in onnx_backend_expected.py: {missing}"
