"""How JAX should start, set before it does — in a module that does not import JAX, so that
light commands (`gaugedsl check`, `fmt`, `lsp`) stay light. See `gaugedsl.dynamics.devices`."""

from __future__ import annotations

import os
import re

_FLAG = "--xla_force_host_platform_device_count"


def request_host_devices() -> None:
    """One XLA CPU device per available core, unless XLA_FLAGS already says how many or
    GAUGEDSL_CPU_DEVICES does; and an intra-op thread pool of twice that many threads.
    Effective only before JAX creates its CPU backend."""
    flags = os.environ.get("XLA_FLAGS", "")
    given = re.search(rf"{_FLAG}=(\d+)", flags)
    if given:
        count = int(given.group(1))
    else:
        count = _wanted_devices()
        if count > 1:
            os.environ["XLA_FLAGS"] = f"{flags} {_FLAG}={count}".strip()
    if count > 1:
        _pool_for(count)


def _wanted_devices() -> int:
    wanted = os.environ.get("GAUGEDSL_CPU_DEVICES")
    try:
        return int(wanted) if wanted else len(os.sched_getaffinity(0))
    except (ValueError, AttributeError):
        return os.cpu_count() or 1


def _pool_for(devices: int) -> None:
    """XLA sizes its CPU intra-op pool as max(PJRT_NPROC or cores, devices). With one device
    per core every pool thread can be running a device's program, and jaxlib's batched
    LAPACK kernels (svd, eigh, qr, lu, ... over a batch of particles) split the batch into
    tasks on that same pool and block until they are done: once every thread blocks so, no
    thread is left to run the tasks and the run hangs for ever (seen: svdvals of 20 × 20
    records with 4 particles per device on 2 devices). Twice as many threads as devices
    leaves threads free; idle ones cost nothing measurable. A user's PJRT_NPROC or NPROC
    stands."""
    if "PJRT_NPROC" not in os.environ and "NPROC" not in os.environ:
        os.environ["PJRT_NPROC"] = str(2 * devices)


def request_cacheable_programs() -> None:
    """Equinox's runtime checks as NaNs instead of errors raised from the host
    (`EQX_ON_ERROR=nan`), unless the user chose otherwise. A check that can raise is a host
    callback in the compiled program, and XLA keeps no program with host callbacks in its
    compilation cache: every SDE chunk has one (Diffrax checks the sign of its step against
    the chunk's length, which is only known at run time), so every repeated SDE run compiled
    its chunk again. gaugedsl never relies on such a check raising: its solvers run with
    `throw=False`, and a non-finite state is reported as a divergence. Effective only before
    Equinox is imported."""
    os.environ.setdefault("EQX_ON_ERROR", "nan")
