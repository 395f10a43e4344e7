"""examples/out_of_tree_backend is a backend shipped as its own pip package (issue 5 item 4):
installed here with `pip install --target` (no network, no build isolation), it must be found
through the `kaiyuan.backends` entry point by a fresh process and pass kaiyuan's conformance
suite unchanged, selected with KAIYUAN_TEST_DEVICES=vcpu. Nothing in kaiyuan names it.

Cost: one pip build (~2 s) and the suite's C compiles for the new target (~40 s on 2 cores;
vcpu's target string keeps its cache entries apart from cpu's, so nothing is reused)."""

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "examples" / "out_of_tree_backend"
CONFORMANCE = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests" / "backends").glob("test_*.py"))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The example installed into a private folder; a copy is built, so the checkout stays clean."""
    tmp = tmp_path_factory.mktemp("vcpu")
    src, target = tmp / "src", tmp / "site"
    shutil.copytree(PACKAGE, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                           "--disable-pip-version-check", "--quiet", "--target", str(target), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (target / "kaiyuan_vcpu" / "__init__.py").is_file()
    return target


def _env(site: Path, **extra) -> dict:
    env = {**os.environ, **extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    return env


def test_entry_point_lists_the_device(site):
    proc = subprocess.run([sys.executable, "-m", "kaiyuan", "devices", "--json"], capture_output=True, text=True,
                          env=_env(site), timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = {row["name"]: row for row in json.loads(proc.stdout)}
    assert rows["vcpu"]["available"], rows["vcpu"]
    assert rows["vcpu"]["properties"]["kind"] == "example out-of-tree backend"
    assert rows["vcpu"]["capabilities"]["vector_width_bits"] == 128  # its own flags, not the host's
    without = subprocess.run([sys.executable, "-m", "kaiyuan", "devices"], capture_output=True, text=True,
                             env=_env(Path("/nonexistent")), timeout=120)
    assert without.returncode == 0 and "vcpu" not in without.stdout  # only the install makes it appear


def test_conformance_suite_runs_unchanged_on_it(site, tmp_path):
    report = tmp_path / "report.xml"
    proc = subprocess.run([sys.executable, "-m", "pytest", *CONFORMANCE, "-q", "-p", "no:cacheprovider",
                           f"--junitxml={report}"], cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env=_env(site, KAIYUAN_TEST_DEVICES="vcpu"))
    tail = proc.stdout[-3000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, tail
    cases = ET.parse(report).getroot().iter("testcase")
    ran = [(c.get("name"), [e.tag for e in c]) for c in cases]
    on_vcpu = [name for name, _ in ran if "[vcpu" in name or "-vcpu" in name]
    device_free = [name for name, _ in ran if "[" not in name]  # tests without the device fixture
    assert len(on_vcpu) > 100, tail
    assert len(on_vcpu) + len(device_free) == len(ran), [n for n, _ in ran if n not in on_vcpu][:10]
    assert not [name for name, tags in ran if "failure" in tags or "error" in tags]


CHECKS = """
import numpy as np, kaiyuan as ky, kaiyuan.language as kl

@ky.jit
def double(x_ptr, n, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    kl.store(x_ptr + offs, kl.load(x_ptr + offs, mask=offs < n) * 2, mask=offs < n)

x = ky.tensor(np.arange(10, dtype=np.float32), device="interp").to("vcpu")
kernel = double[(1,)](x, 10, BLOCK=16)
assert [s for s, _ in kernel.stages] == ["ky", "ky-cpu", "c", "vcpu-c", "so"], kernel.stages
assert "#define KY_ISA_GENERIC" in kernel.asm["vcpu-c"] and "KY_ISA_GENERIC 1" not in kernel.asm["c"]
assert np.array_equal(x.to("cpu").to("interp").numpy(), 2 * np.arange(10))
assert ky.compile(double, target="vcpu", signature={"x_ptr": "*fp32", "n": "i32"}, constants={"BLOCK": 16}).key \\
    != ky.compile(double, target="cpu", signature={"x_ptr": "*fp32", "n": "i32"}, constants={"BLOCK": 16}).key
try:                                   # KAIYUAN_VCPU_MEMORY_MB=1: a 2 MiB tensor does not fit
    ky.empty((1 << 19,), "fp32", device="vcpu")
except ky.OutOfMemoryError as e:
    assert "vcpu" in str(e)
else:
    raise AssertionError("no OutOfMemoryError")
print("ok")
"""


def test_own_stage_target_and_memory(site, tmp_path):
    script = tmp_path / "checks.py"  # a real file: the frontend reads kernel source with inspect
    script.write_text(CHECKS)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                          env=_env(site, KAIYUAN_VCPU_MEMORY_MB="1"))
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr
