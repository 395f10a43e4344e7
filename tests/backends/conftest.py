"""The conformance suite's `device` fixture (DESIGN.md §5: written once, run on every backend).

Every test that takes `device` runs once per available device of `kaiyuan.devices()` (today
`interp` and, once it lands, `cpu`), inside `with ky.device(name):`, so host arrays passed to a
kernel launch run on that device. The fixture's value is the Device.
"""

import pytest

import kaiyuan as ky


def available_devices() -> list[str]:
    return [info.name for info in ky.devices() if info.available]


def pytest_generate_tests(metafunc):
    if "device" in metafunc.fixturenames:
        names = available_devices()
        metafunc.parametrize("device", names, indirect=True, ids=names)


@pytest.fixture
def device(request):
    with ky.device(request.param) as dev:
        yield dev
