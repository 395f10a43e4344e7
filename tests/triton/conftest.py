"""Triton tutorial kernels run on every available device: the conformance suite's fixture."""

from ..backends.conftest import device, pytest_generate_tests  # noqa: F401
