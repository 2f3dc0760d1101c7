"""Reading JAX's configuration, typed."""

from __future__ import annotations

import jax


def x64_enabled() -> bool:
    """Whether JAX computes in 64 bits (`jax_enable_x64`, as set now, context managers included)."""
    # JAX adds its flags to `Config` as properties at import time, so its stubs declare none.
    return bool(jax.config.jax_enable_x64)  # pyright: ignore[reportAttributeAccessIssue]
