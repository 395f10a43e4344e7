"""Calibration of the shm transport: the fit recovers known parameters; one real 2-rank job runs."""

from dataclasses import replace

import numpy as np
import pytest

from kaiyuan.comm import cost
from kaiyuan.comm.simulate import calibrate


def test_fit_recovers_the_parameters_that_made_the_times():
    base = cost.DEFAULTS[("shm", "intra")]
    true = replace(base, alpha=150e-6, beta=1 / 2.5e9, gamma=1 / 8e9)
    rows = [{"algo": a, "nbytes": s, "world_size": n} for n in (2, 4) for a in calibrate.ALGOS
            for s in (4096, 1 << 20, 1 << 24)]
    for r in rows:
        r["seconds"] = float(calibrate.coefficients(r, base) @ [true.alpha, true.beta, true.gamma])
    alpha, beta = calibrate.fit(rows, true.gamma, base)
    assert alpha == pytest.approx(true.alpha, rel=1e-6) and beta == pytest.approx(true.beta, rel=1e-6)
    rows[0]["default"] = rows[0]["predicted"] = rows[0]["seconds"]
    assert "ring" in calibrate.table(rows[:1]) and "1.00" in calibrate.table(rows[:1])


def test_a_real_shm_job_reports_times_for_each_algorithm():
    rows = calibrate.measure(2, sizes=(4096,), algos=("ring", "direct"), timeout=120)
    assert [(r["algo"], r["nbytes"], r["world_size"]) for r in rows] == [("ring", 4096, 2), ("direct", 4096, 2)]
    assert all(np.isfinite(r["seconds"]) and r["seconds"] > 0 for r in rows)
    assert calibrate.measure_gamma(1 << 16, reps=2) > 0
