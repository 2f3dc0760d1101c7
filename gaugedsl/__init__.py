"""gaugedsl: a small language for the geometry of learning dynamics.

`gaugedsl.load(path_or_text)` checks a program and returns a `Model` with `bias()`, `run()` and
`design()`; see `gaugedsl.api`. Importing gaugedsl never switches JAX's 64-bit mode.
"""

__version__ = "0.1.0"

from .api import BiasResult as BiasResult
from .api import DesignResult as DesignResult
from .api import Model as Model
from .api import RunResult as RunResult
from .api import load as load
from .diagnostics import Diagnostic as Diagnostic
from .diagnostics import GaugeError as GaugeError
