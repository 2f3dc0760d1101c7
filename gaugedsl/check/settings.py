"""What the `run` and `design` statements accept: names, types, ranges, defaults. (A noise model's
settings are its registry entry's, `gaugedsl/kinds/noises.py`.)"""

from __future__ import annotations

from ..kinds.setting import Setting
from ..kinds.solvers import SOLVERS


def _s(*args, **kwargs) -> Setting:
    return Setting(*args, **kwargs)


DYNAMICS = ("sde", "quotient", "sgd", "gd")
INCREMENTS = ("gaussian", "rademacher")

RUN_SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        _s(
            "dynamics",
            "enum",
            "sde, quotient (the projected-noise SDE on the gauge slice), sgd (the discrete minibatch map) or gd",
            choices=DYNAMICS,
        ),
        _s("particles", "int", "independent runs simulated together", default=1, positive=True, below=2**31),
        _s("steps", "int", "number of steps, up to 2^31 − 1", default=1000, positive=True, below=2**31),
        _s("dt", "float", "SDE time step", positive=True),
        _s("lr", "float", "learning rate of sgd/gd dynamics", positive=True),
        _s("batch", "int", "minibatch size of sgd dynamics", positive=True),
        _s("solver", "enum", "SDE solver", default="euler", choices=SOLVERS),
        _s(
            "increments",
            "enum",
            "the SDE's noise increments: gaussian, or rademacher (±sqrt(dt) per coordinate: the same stationary "
            "statistics to O(dt), weak order 1, cheaper to draw)",
            default="gaussian",
            choices=INCREMENTS,
        ),
        _s("seed", "int", "random seed, 0 to 2^32 − 1", default=0, nonnegative=True, below=2**32),
        _s("dtype", "enum", "float32 or float64", default="float32", choices=("float32", "float64")),
        _s(
            "start",
            "enum",
            "start at the initializers (init) or their projection onto the gauge slice (slice)",
            default="init",
            choices=("init", "slice"),
        ),
        _s("chunk", "int", "steps per checkpoint and progress update", positive=True),
    )
}

DESIGN_TARGETS = ("sparsity", "spectral_sparsity", "low_rank", "total_variation")
DESIGN_SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        _s("target", "enum", "the wanted bias", required=True, choices=DESIGN_TARGETS),
        _s("predictor", "name", "the predictor (or the parameter) the bias is about"),
        _s("operator", "name", "analysis operator A: identity, cosine, fourier, difference, or a data matrix"),
        _s("depth", "int", "depth L of the Hadamard product (bias exponent 1 − 1/L)", default=2, positive=True),
        _s("exponent", "float", "the bias exponent 1 − 1/L instead of the depth (1/2, 2/3, 3/4, ...)", positive=True),
        _s("rank", "int", "inner dimension r of a factorization", positive=True),
        _s("strength", "float", "temperature T of the bias", positive=True),
        _s(
            "init",
            "float",
            "standard deviation of each factor's initializer (default: the predictor's, to the power 1/L)",
            positive=True,
        ),
        _s("lr", "float", "learning rate of the designed model's run (default: the source's)", positive=True),
    )
}
DESIGN_OPERATORS = ("identity", "cosine", "fourier", "difference")
