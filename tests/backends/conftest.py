"""The conformance suite's `device` fixture (DESIGN.md §5: written once, run on every backend).

Every test that takes `device` runs once per available device of `kaiyuan.devices()` (interp,
cpu, and every backend installed through the `kaiyuan.backends` entry points), inside
`with ky.device(name):`, so host arrays passed to a kernel launch run on that device. The
fixture's value is the Device.

`KAIYUAN_TEST_DEVICES=vcpu,interp` (a comma list) runs the suite on those devices only: a vendor
checks their backend without paying for the others (docs/backends.md, "The conformance suite").
A listed device that is not available fails the run rather than silently testing nothing.
"""

import os

import pytest

import kaiyuan as ky


def available_devices() -> list[str]:
    present = [info.name for info in ky.devices() if info.available]
    wanted = [name.strip() for name in os.environ.get("KAIYUAN_TEST_DEVICES", "").split(",") if name.strip()]
    if not wanted:
        return present
    missing = [name for name in wanted if name not in present]
    if missing:
        raise pytest.UsageError(f"KAIYUAN_TEST_DEVICES names {', '.join(missing)}, not available here "
                                f"(available: {', '.join(present) or 'none'}; see `kaiyuan devices`)")
    return wanted


def pytest_generate_tests(metafunc):
    if "device" in metafunc.fixturenames:
        names = available_devices()
        metafunc.parametrize("device", names, indirect=True, ids=names)


@pytest.fixture
def device(request):
    with ky.device(request.param) as dev:
        yield dev
