import os

import pytest

# Geometry and the statistical tests resolve small biases: float64 throughout the suite.
os.environ.setdefault("JAX_ENABLE_X64", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# `gaugedsl run` in-process must not write the user's XLA cache (~/.cache/gaugedsl/xla), and the
# tests that count compilations need real ones; test_devices checks the cache in a subprocess.
os.environ.setdefault("GAUGEDSL_XLA_CACHE", "0")
# XLA's CPU intra-op pool is max(PJRT_NPROC or cores, devices): with two devices on two cores,
# batched LAPACK calls on both devices at once can wait on each other's threads. `gaugedsl run`
# asks for twice the devices (gaugedsl/_host.py); the suite does the same.
os.environ.setdefault("PJRT_NPROC", "4")
# Two CPU devices, as `gaugedsl run` sets up on a 2-core machine: every ensemble in the suite
# runs sharded over them (and the order of tests cannot change the device count).
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="run the full statistical tests")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow statistical test: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
