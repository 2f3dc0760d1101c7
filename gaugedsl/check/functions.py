"""The built-in functions: their arguments and shape rules, in one table.

This table is the one source of truth for function names: the checker reads it, the
lowering to JAX (`gaugedsl.lowering`) implements every entry, and the editor grammars are
generated from it. Arguments are either array expressions (`EXPR`) or static values known
when checking (`INT`, `FLOAT`, `STRING`, `INTS`, `FLOATS`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

from .shapes import Shape, ShapeError, broadcast, normalize_axis, show, size

EXPR = "expr"
INT = "int"
FLOAT = "float"
STRING = "string"
INTS = "ints"
FLOATS = "floats"
SYMMETRY = "symmetry"
REQUIRED = object()

# Where a function may be called.
ANYWHERE = "anywhere"
GENERATOR = "generator"  # data, param initializers (shape from the declaration)
STREAM = "stream"  # random draws of a stream, and generators
RECORD = "record"  # run-block records only


@dataclasses.dataclass(frozen=True)
class Arg:
    name: str
    kind: str
    default: Any = REQUIRED
    below: int | None = None  # an INT argument's exclusive upper bound (its lower one is 0)


@dataclasses.dataclass(frozen=True)
class Function:
    name: str
    args: tuple[Arg, ...]
    rule: Callable[[list[Shape], dict[str, Any], Shape | None], Shape]
    doc: str
    where: str = ANYWHERE
    variadic: bool = False  # all positional arguments are EXPR

    def signature(self) -> str:
        if self.variadic:
            return f"{self.name}(a, b, ...)"
        parts = []
        for a in self.args:
            parts.append(a.name if a.default is REQUIRED else f"{a.name}={_show_default(a.default)}")
        return f"{self.name}({', '.join(parts)})"


def _show_default(value: Any) -> str:
    if value is None:
        return "none"
    return str(value)


FUNCTIONS: dict[str, Function] = {}


def _register(name, args, rule, doc, where=ANYWHERE, variadic=False):
    FUNCTIONS[name] = Function(name, tuple(args), rule, doc, where, variadic)


# ---- rules ----


def _same(shapes, static, target):
    return shapes[0]


def _elementwise_binary(shapes, static, target):
    return broadcast(shapes[0], shapes[1])


def _reduce(shapes, static, target):
    (shape,) = shapes[:1]
    axis = static.get("axis")
    if axis is None:
        return ()
    axis = normalize_axis(axis, len(shape))
    return shape[:axis] + shape[axis + 1 :]


def _along_axis(shapes, static, target):
    shape = shapes[0]
    if shape == ():
        raise ShapeError("needs an array, not a scalar", 0)
    normalize_axis(static.get("axis", -1), len(shape))
    return shape


def _dot(shapes, static, target):
    a, b = shapes
    if len(a) != 1 or len(b) != 1 or a != b:
        raise ShapeError(f"dot needs two vectors of the same length, got {show(a)} and {show(b)}")
    return ()


def _outer(shapes, static, target):
    a, b = shapes
    if len(a) != 1 or len(b) != 1:
        raise ShapeError(f"outer needs two vectors, got {show(a)} and {show(b)}")
    return (a[0], b[0])


def _square(shapes, static, target):
    (a,) = shapes[:1]
    if len(a) != 2 or a[0] != a[1]:
        raise ShapeError(f"needs a square matrix, got {show(a)}", 0)
    return a


def _square_to_scalar(shapes, static, target):
    _square(shapes, static, target)
    return ()


def _diag(shapes, static, target):
    (a,) = shapes
    if len(a) == 1:
        return (a[0], a[0])
    if len(a) == 2:
        return (min(a),)
    raise ShapeError(f"diag takes a vector (→ matrix) or a matrix (→ vector), got {show(a)}", 0)


def _svdvals(shapes, static, target):
    (a,) = shapes
    if len(a) != 2:
        raise ShapeError(f"svdvals needs a matrix, got {show(a)}", 0)
    return (min(a),)


def _concat(shapes, static, target):
    if not shapes:
        raise ShapeError("concat needs at least one array")
    if any(s == () for s in shapes):
        raise ShapeError("concat joins arrays, not scalars; write [a, b] for a vector of numbers")
    ndim = len(shapes[0])
    axis = normalize_axis(static.get("axis", 0), ndim)
    for i, s in enumerate(shapes):
        if len(s) != ndim or s[:axis] + s[axis + 1 :] != shapes[0][:axis] + shapes[0][axis + 1 :]:
            raise ShapeError(f"concat along axis {axis}: {show(s)} does not match {show(shapes[0])}", i)
    total = sum(s[axis] for s in shapes)
    return shapes[0][:axis] + (total,) + shapes[0][axis + 1 :]


def _telescope(shapes, static, target):
    (a,) = shapes
    if a == ():
        raise ShapeError("telescope needs an array whose first axis counts the layers", 0)
    return (a[0] + 1,) + a[1:]


def _reshape(shapes, static, target):
    new = tuple(static["shape"])
    if size(new) != size(shapes[0]):
        raise ShapeError(f"cannot reshape {show(shapes[0])} ({size(shapes[0])} entries) to {show(new)}")
    return new


def _generated(shapes, static, target):
    shape = static.get("shape")
    if shape is not None:
        shape = tuple(shape)
    elif target is not None:
        shape = target
    else:
        raise ShapeError("give its shape, e.g. shape = [3]")
    for i, s in enumerate(shapes):
        try:
            broadcast(s, shape)
        except ShapeError:
            raise ShapeError(f"argument of shape {show(s)} does not fit the drawn shape {show(shape)}", i) from None
    return shape


def _eye(shapes, static, target):
    n = static["n"]
    if n < 1:
        raise ShapeError("eye(n) needs n ≥ 1")
    return (n, n)


def _linspace(shapes, static, target):
    for i, s in enumerate(shapes):
        if s != ():
            raise ShapeError("linspace takes scalar end points", i)
    if static["n"] < 1:
        raise ShapeError("linspace needs n ≥ 1")
    return (static["n"],)


def _arange(shapes, static, target):
    start, stop = static["start"], static.get("stop")
    if stop is None:
        start, stop = 0, start
    if stop <= start:
        raise ShapeError(f"arange({start}, {stop}) is empty")
    return (stop - start,)


def _repeat(shapes, static, target):
    values, counts = static["values"], static["counts"]
    if len(values) != len(counts):
        raise ShapeError(f"repeat: {len(values)} values but {len(counts)} counts")
    if any(c < 0 for c in counts) or sum(counts) == 0:
        raise ShapeError("repeat needs non-negative counts that add up to at least 1")
    return (sum(counts),)


def _sparse(shapes, static, target):
    shape = _generated(shapes, static, target)
    if static["k"] > size(shape) or static["k"] < 0:
        raise ShapeError(f"sparse: k = {static['k']} does not fit {size(shape)} entries")
    return shape


def _spikes(shapes, static, target):
    shape = _generated(shapes, static, target)
    at, values = static["at"], static["values"]
    if len(shape) != 1:
        raise ShapeError("spikes makes a vector")
    if len(at) != len(values):
        raise ShapeError(f"spikes: {len(at)} positions but {len(values)} values")
    bad = [i for i in at if not 0 <= i < shape[0]]
    if bad:
        raise ShapeError(f"spikes: position {bad[0]} is outside 0..{shape[0] - 1}")
    return shape


def _orthonormal(shapes, static, target):
    shape = _generated(shapes, static, target)
    if len(shape) != 2 or shape[1] > shape[0]:
        raise ShapeError(f"orthonormal makes an n×k matrix with k ≤ n, not {show(shape)}")
    return shape


def _load(shapes, static, target):
    if target is None:
        raise ShapeError("load(...) is only for data declarations, which give the shape")
    return target


def _charge(shapes, static, target):
    return (static["s"].group.algebra_dim,)


def _scalar_of_symmetry(shapes, static, target):
    return ()


# ---- the table ----

for _name, _doc in [
    ("exp", "e to the x, elementwise"),
    ("log", "natural logarithm, elementwise"),
    ("log1p", "log(1 + x), elementwise"),
    ("abs", "absolute value, elementwise"),
    ("sqrt", "square root, elementwise"),
    ("square", "x², elementwise"),
    ("relu", "max(x, 0), elementwise"),
    ("tanh", "hyperbolic tangent, elementwise"),
    ("sigmoid", "1 / (1 + e^-x), elementwise"),
    ("softplus", "log(1 + e^x), elementwise"),
    ("sin", "sine, elementwise"),
    ("cos", "cosine, elementwise"),
    ("sign", "sign (−1, 0, 1), elementwise"),
]:
    _register(_name, [Arg("x", EXPR)], _same, _doc)

for _name, _doc in [
    ("sum", "sum of the entries (along `axis` if given)"),
    ("mean", "mean of the entries (along `axis` if given)"),
    ("prod", "product of the entries (along `axis` if given)"),
    ("max", "largest entry (along `axis` if given)"),
    ("min", "smallest entry (along `axis` if given)"),
    ("logsumexp", "log Σ e^x (along `axis` if given)"),
    ("norm", "Euclidean (Frobenius) norm (along `axis` if given)"),
]:
    _register(_name, [Arg("x", EXPR), Arg("axis", INT, None)], _reduce, _doc)

_register("maximum", [Arg("a", EXPR), Arg("b", EXPR)], _elementwise_binary, "elementwise larger of a and b")
_register("minimum", [Arg("a", EXPR), Arg("b", EXPR)], _elementwise_binary, "elementwise smaller of a and b")
_register("softmax", [Arg("x", EXPR), Arg("axis", INT, -1)], _along_axis, "softmax along `axis` (default last)")
_register("cumsum", [Arg("x", EXPR), Arg("axis", INT, -1)], _along_axis, "running sum along `axis` (default last)")
_register("normalize", [Arg("x", EXPR), Arg("axis", INT, None)], _same, "x divided by its norm (along `axis` if given)")
_register("dot", [Arg("a", EXPR), Arg("b", EXPR)], _dot, "inner product of two vectors")
_register("outer", [Arg("a", EXPR), Arg("b", EXPR)], _outer, "outer product of two vectors")
_register("inv", [Arg("A", EXPR)], _square, "inverse of a square matrix")
_register("det", [Arg("A", EXPR)], _square_to_scalar, "determinant of a square matrix")
_register("logdet", [Arg("A", EXPR)], _square_to_scalar, "log |det A| of a square matrix")
_register("trace", [Arg("A", EXPR)], _square_to_scalar, "trace of a square matrix")
_register("diag", [Arg("x", EXPR)], _diag, "vector → diagonal matrix; matrix → its diagonal")
_register("svdvals", [Arg("A", EXPR)], _svdvals, "singular values of a matrix, largest first")
_register("concat", [Arg("axis", INT, 0)], _concat, "join arrays along `axis` (default 0)", variadic=True)
_register(
    "telescope",
    [Arg("g", EXPR)],
    _telescope,
    "layer factors of a depth rescaling: rows g₀, g₁/g₀, …, 1/g_{L−2} (their product is 1)",
)
_register("reshape", [Arg("x", EXPR), Arg("shape", INTS)], _reshape, "the same entries in a new shape")

# Constants and generators: evaluated once, when the data and the initial point are made.
_register("eye", [Arg("n", INT)], _eye, "the n×n identity matrix")
_register(
    "linspace",
    [Arg("start", EXPR), Arg("stop", EXPR), Arg("n", INT)],
    _linspace,
    "n evenly spaced numbers from start to stop",
)
_register(
    "arange",
    [Arg("start", INT), Arg("stop", INT, None)],
    _arange,
    "the integers start, …, stop − 1 (or 0, …, start − 1)",
)
_register(
    "repeat",
    [Arg("values", FLOATS), Arg("counts", INTS)],
    _repeat,
    "each value repeated its count times: a piecewise-constant vector",
)

_SEED = Arg("seed", INT, None, below=2**32)  # a JAX key holds 32 bits: 2^32 would wrap onto seed 0
_SHAPE = Arg("shape", INTS, None)
_register(
    "normal", [Arg("mean", EXPR, 0.0), Arg("std", EXPR, 1.0), _SHAPE, _SEED], _generated, "Gaussian draws", STREAM
)
_register(
    "uniform",
    [Arg("low", EXPR, 0.0), Arg("high", EXPR, 1.0), _SHAPE, _SEED],
    _generated,
    "uniform draws on [low, high)",
    STREAM,
)
_register("bernoulli", [Arg("p", EXPR, 0.5), _SHAPE, _SEED], _generated, "0/1 draws, 1 with probability p", STREAM)
_register("zeros", [_SHAPE], _generated, "all zeros", GENERATOR)
_register("ones", [_SHAPE], _generated, "all ones", GENERATOR)
_register("full", [Arg("value", EXPR), _SHAPE], _generated, "every entry equal to value", GENERATOR)
_register(
    "sparse",
    [Arg("k", INT), Arg("low", FLOAT, 1.0), Arg("high", FLOAT, 2.0), _SHAPE, _SEED],
    _sparse,
    "k random entries with magnitudes uniform in [low, high] and random signs, the rest zero",
    GENERATOR,
)
_register(
    "spikes",
    [Arg("at", INTS), Arg("values", FLOATS), _SHAPE],
    _spikes,
    "zeros except `values` at the positions `at`",
    GENERATOR,
)
_register(
    "orthonormal",
    [_SHAPE, _SEED],
    _orthonormal,
    "a random n×k matrix with orthonormal columns (Q of a Gaussian)",
    GENERATOR,
)
_register(
    "load",
    [Arg("file", STRING), Arg("key", STRING, None)],
    _load,
    "an array from a .npz, .npy or .csv file beside the program",
    GENERATOR,
)

# Observables of a symmetry, for the run block's records.
_register(
    "charge", [Arg("s", SYMMETRY)], _charge, "the Noether charges ½⟨θ, ξ_a(θ)⟩ of symmetry s, one per generator", RECORD
)
_register(
    "logdet_gram",
    [Arg("s", SYMMETRY)],
    _scalar_of_symmetry,
    "log det of the Gram matrix of symmetry s's generators",
    RECORD,
)

GENERATORS = frozenset(n for n, f in FUNCTIONS.items() if f.where in (GENERATOR, STREAM))
RANDOM = frozenset({"normal", "uniform", "bernoulli", "sparse", "orthonormal"})
CONSTANTS = {"pi": math.pi}
