"""A setting a statement accepts: its name, type, range and default (the noise models' settings
here, the run and design blocks' in `check/settings.py`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import Any


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str
    kind: str  # "float", "int", "enum", "name", "target"
    doc: str
    default: Any = None
    required: bool = False
    positive: bool = False  # > 0 (floats) / ≥ 1 (ints)
    nonnegative: bool = False
    below: int | None = None  # an int setting's exclusive upper bound
    choices: Collection[str] = ()  # a registry (a dict of kinds) stays live: a kind registered later is accepted
