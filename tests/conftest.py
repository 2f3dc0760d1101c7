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


def _share_compilations() -> None:
    """One persistent XLA cache for the suite's processes (the xdist workers and the
    subprocesses they start): many tests build simulations of the same small models, whose
    programs are then compiled once. The cache's key is the program, JAX's version and flags,
    so a hit is the same executable; compile logs ("Finished XLA compilation") are the same
    with or without it. GAUGEDSL_SUITE_XLA_CACHE=0 turns it off."""
    import getpass
    import tempfile

    import jax

    folder = os.environ.get("GAUGEDSL_SUITE_XLA_CACHE") or os.path.join(
        tempfile.gettempdir(), f"gaugedsl-suite-xla-{getpass.getuser()}"
    )
    if folder == "0":
        return
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


_share_compilations()


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="run the full statistical tests")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow statistical test: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
