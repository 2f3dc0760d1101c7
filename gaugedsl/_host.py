"""How JAX should start, set before it does — in a module that does not import JAX, so that
light commands (`gaugedsl check`, `fmt`, `lsp`) stay light. See `gaugedsl.dynamics.devices`."""

from __future__ import annotations

import os

_FLAG = "--xla_force_host_platform_device_count"


def request_host_devices() -> None:
    """One XLA CPU device per available core, unless XLA_FLAGS already says how many or
    GAUGEDSL_CPU_DEVICES does. Effective only before JAX creates its CPU backend."""
    flags = os.environ.get("XLA_FLAGS", "")
    if _FLAG in flags:
        return
    wanted = os.environ.get("GAUGEDSL_CPU_DEVICES")
    try:
        count = int(wanted) if wanted else len(os.sched_getaffinity(0))
    except (ValueError, AttributeError):
        count = os.cpu_count() or 1
    if count > 1:
        os.environ["XLA_FLAGS"] = f"{flags} {_FLAG}={count}".strip()
