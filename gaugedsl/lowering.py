"""The one lowering of IR expressions to JAX.

`evaluate` interprets an IR expression on JAX arrays. Under `jax.jit` it runs once, at trace
time, so the compiled program holds only the JAX operations. Geometry, dynamics and design
all build their functions from `Lowered`, which wraps a checked model: its data, parameter
layout, loss, predictors and symmetry actions. There is no second evaluator.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from . import ir
from .diagnostics import Diagnostic, GaugeError, error

Array = Any
Env = Mapping[str, Array]


# ---- built-in functions ---------------------------------------------------------------


def _reduce(fn):
    def apply(x, axis=None):
        return fn(x, axis=axis)

    return apply


def _norm(x, axis=None):
    return jnp.sqrt(jnp.sum(x * x, axis=axis))


def _normalize(x, axis=None):
    return x / jnp.sqrt(jnp.sum(x * x, axis=axis, keepdims=axis is not None))


def _telescope(g):
    ones = jnp.ones_like(g[:1])
    return jnp.concatenate([g, ones], axis=0) / jnp.concatenate([ones, g], axis=0)


def _diag(x):
    return jnp.diag(x)


def _logdet(a):
    return jnp.linalg.slogdet(a)[1]


def _svdvals(a):
    return jnp.linalg.svd(a, compute_uv=False)


ELEMENTWISE: dict[str, Callable] = {
    "exp": jnp.exp,
    "log": jnp.log,
    "log1p": jnp.log1p,
    "abs": jnp.abs,
    "sqrt": jnp.sqrt,
    "square": jnp.square,
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "softplus": jax.nn.softplus,
    "sin": jnp.sin,
    "cos": jnp.cos,
    "sign": jnp.sign,
}

# name → f(*array_args, **static_args)
IMPLEMENTATIONS: dict[str, Callable] = {
    **ELEMENTWISE,
    "sum": _reduce(jnp.sum),
    "mean": _reduce(jnp.mean),
    "prod": _reduce(jnp.prod),
    "max": _reduce(jnp.max),
    "min": _reduce(jnp.min),
    "logsumexp": lambda x, axis=None: jax.nn.logsumexp(x, axis=axis),
    "norm": _norm,
    "maximum": jnp.maximum,
    "minimum": jnp.minimum,
    "softmax": lambda x, axis=-1: jax.nn.softmax(x, axis=axis),
    "cumsum": lambda x, axis=-1: jnp.cumsum(x, axis=axis),
    "normalize": _normalize,
    "dot": jnp.dot,
    "outer": jnp.outer,
    "inv": jnp.linalg.inv,
    "det": jnp.linalg.det,
    "logdet": _logdet,
    "trace": jnp.trace,
    "diag": _diag,
    "svdvals": _svdvals,
    "concat": lambda *xs, axis=0: jnp.concatenate(xs, axis=axis),
    "telescope": _telescope,
    "reshape": lambda x, shape: jnp.reshape(x, tuple(shape)),
    "eye": lambda n: jnp.eye(n),
    "linspace": lambda start, stop, n: jnp.linspace(start, stop, n),
    "arange": lambda start, stop=None: jnp.arange(start, stop) if stop is not None else jnp.arange(start),
    "repeat": lambda values, counts: jnp.repeat(
        jnp.asarray(values), np.asarray(counts), total_repeat_length=int(sum(counts))
    ),
    "zeros": lambda shape: jnp.zeros(shape),
    "ones": lambda shape: jnp.ones(shape),
    "full": lambda value, shape: jnp.broadcast_to(value, shape) * jnp.ones(shape),
    "spikes": lambda at, values, shape: jnp.zeros(shape).at[jnp.asarray(at)].set(jnp.asarray(values)),
}

# Random generators take a PRNG key first.
RANDOM: dict[str, Callable] = {
    "normal": lambda key, mean, std, shape: mean + std * jax.random.normal(key, shape),
    "uniform": lambda key, low, high, shape: jax.random.uniform(key, shape, minval=low, maxval=high),
    "bernoulli": lambda key, p, shape: jax.random.bernoulli(key, p, shape).astype(jnp.zeros(()).dtype),
}


def _sparse(key, k, low, high, shape):
    n = int(np.prod(shape))
    k_perm, k_mag, k_sign = jax.random.split(key, 3)
    where = jax.random.permutation(k_perm, n)[:k]
    mags = jax.random.uniform(k_mag, (k,), minval=low, maxval=high)
    signs = jnp.where(jax.random.bernoulli(k_sign, 0.5, (k,)), 1.0, -1.0)
    return jnp.zeros(n).at[where].set(mags * signs).reshape(shape)


def _orthonormal(key, shape):
    q, r = jnp.linalg.qr(jax.random.normal(key, shape))
    return q * jnp.sign(jnp.diag(r))  # the sign fix makes Q Haar-distributed


RANDOM_STATIC = {"sparse": _sparse, "orthonormal": _orthonormal}

# Observables of symmetries; supplied by the geometry engine (gaugedsl.geometry).
HOOKED = ("charge", "logdet_gram")


def stable_id(text: str) -> int:
    """A process-independent 31-bit hash, for deriving PRNG streams from names."""
    return zlib.crc32(text.encode("utf-8")) & 0x7FFFFFFF


# ---- the evaluator --------------------------------------------------------------------


class Evaluator:
    """Evaluates IR expressions in an environment of named arrays.

    **Arguments:**

    - `key`: the PRNG key for random calls without `seed = ...`; each call draws from
      `fold_in(key, id of its site)`, the site being its declaration's name and its index
      there (`ir.Call.site`): two calls never share a stream, and layout does not matter.
    - `hooks`: implementations of `charge(s)` and `logdet_gram(s)` (from the geometry engine).
    - `folder`: where `load("file")` looks.
    """

    def __init__(
        self, key: Array | None = None, hooks: Mapping[str, Callable] | None = None, folder: Path | None = None
    ):
        self.key = key
        self.hooks = hooks or {}
        self.folder = folder

    def __call__(self, e: ir.Expr, env: Env) -> Array:
        if isinstance(e, ir.Const):
            return jnp.asarray(e.value) if isinstance(e.value, list) else e.value
        if isinstance(e, ir.Ref):
            return env[e.name]
        if isinstance(e, ir.Op):
            args = [self(a, env) for a in e.args]
            return _OPS[e.op](*args)
        if isinstance(e, ir.Stack):
            return jnp.stack([jnp.asarray(self(i, env)) for i in e.items])
        if isinstance(e, ir.Index):
            items = tuple(slice(i.start, i.stop) if isinstance(i, ir.SliceSpec) else i for i in e.items)
            return jnp.asarray(self(e.value, env))[items]
        if isinstance(e, ir.Call):
            return self._call(e, env)
        raise TypeError(f"not an IR expression: {e!r}")

    def _call(self, e: ir.Call, env: Env) -> Array:
        static = dict(e.static)
        if e.func in self.hooks:
            return self.hooks[e.func](static["s"], env)
        args = [self(a, env) for a in e.args]
        if e.func in RANDOM or e.func in RANDOM_STATIC:
            key = self._key_for(e, static)
            static.pop("seed", None)
            static["shape"] = e.shape
            if e.func in RANDOM:
                return RANDOM[e.func](key, *args, **static)
            return RANDOM_STATIC[e.func](key, **static)
        if e.func == "load":
            return self._load(e, static)
        if e.func in ("zeros", "ones", "full", "spikes"):
            static["shape"] = e.shape
        if e.func in HOOKED:
            raise GaugeError(
                [
                    error(
                        "E702",
                        e.span,
                        f"{e.func}(...) is only available while recording a run",
                        "record it in the run block",
                    )
                ]
            )
        return IMPLEMENTATIONS[e.func](*args, **static)

    def _key_for(self, e: ir.Call, static: dict) -> Array:
        seed = static.get("seed")
        if seed is not None:
            return jax.random.PRNGKey(seed)
        if self.key is None or e.site is None:
            raise GaugeError(
                [error("E703", e.span, f"{e.func}(...) needs randomness here", "give it a seed: seed = 0")]
            )
        return jax.random.fold_in(self.key, stable_id(e.site))

    def _load(self, e: ir.Call, static: dict) -> np.ndarray:
        folder = (self.folder or Path(e.span.path).resolve().parent).resolve()
        path = (folder / static["file"]).resolve()
        if folder not in path.parents:
            raise GaugeError(
                [
                    error(
                        "E704",
                        e.span,
                        f"'{static['file']}' is outside the program's folder",
                        "data files must sit beside the .gauge file (or in a folder below it)",
                    )
                ]
            )
        if path.exists() and not path.is_file():  # a FIFO or a device would block or never end
            raise GaugeError([error("E705", e.span, f"{path.name} is not a regular file", "point load at a data file")])
        try:
            if path.suffix == ".npz":
                with np.load(path, allow_pickle=False) as archive:
                    key = static.get("key")
                    if key is None:
                        if len(archive.files) != 1:
                            raise GaugeError(
                                [
                                    error(
                                        "E705",
                                        e.span,
                                        f"{path.name} holds {len(archive.files)} arrays ({', '.join(archive.files)})",
                                        f'say which: load("{static["file"]}", "{archive.files[0]}")',
                                    )
                                ]
                            )
                        key = archive.files[0]
                    if key not in archive.files:
                        raise GaugeError(
                            [
                                error(
                                    "E705",
                                    e.span,
                                    f"{path.name} has no array '{key}'",
                                    "it holds: " + ", ".join(archive.files),
                                )
                            ]
                        )
                    shape = _npz_member_shape(archive, key)  # the header first: a forged size is not read
                    if shape != tuple(e.shape):
                        raise GaugeError([_wrong_shape(e, path, shape)])
                    value = archive[key]
            elif path.suffix == ".npy":
                value = np.load(path, allow_pickle=False, mmap_mode="r")  # the header first: shape, dtype
            elif path.suffix == ".csv":
                value = np.loadtxt(path, delimiter=",", ndmin=1)
            else:
                raise GaugeError(
                    [error("E705", e.span, f"cannot load '{path.suffix}' files", "use .npz, .npy or .csv")]
                )
        except OSError as exc:
            raise GaugeError(
                [error("E705", e.span, f"cannot read {path.name}: {exc.strerror or exc}", "check the file name")]
            ) from None
        except (ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:  # damaged, truncated, pickled, not numbers
            raise GaugeError(
                [
                    error(
                        "E705",
                        e.span,
                        f"cannot read {path.name}: {exc or type(exc).__name__}",
                        "check the file's format",
                    )
                ]
            ) from None
        if value.dtype.kind not in "biuf":
            what = "complex numbers" if value.dtype.kind == "c" else f"values of type {value.dtype}"
            raise GaugeError(
                [error("E705", e.span, f"{path.name} holds {what}", "data must be real numbers (int or float)")]
            )
        if tuple(value.shape) != tuple(e.shape):
            raise GaugeError([_wrong_shape(e, path, value.shape)])
        value = np.asarray(value, dtype=np.float64)
        if not np.all(np.isfinite(value)):
            bad, count = np.argwhere(~np.isfinite(value))[0], int(np.sum(~np.isfinite(value)))
            raise GaugeError(
                [
                    error(
                        "E705",
                        e.span,
                        f"{path.name} holds {count} {'value that is' if count == 1 else 'values that are'} NaN or infinite "
                        f"(the first at index {list(map(int, bad))})",
                        "fill or drop them before loading: a non-finite datum makes every step non-finite",
                    )
                ]
            )
        return value


def _wrong_shape(e: ir.Call, path: Path, shape) -> Diagnostic:
    return error(
        "E706",
        e.span,
        f"{path.name} holds an array of shape {list(shape)}, but the declaration says {list(e.shape)}",
        "fix the declared shape",
    )


def _npz_member_shape(archive, key: str) -> tuple[int, ...]:
    """The shape a `.npz` member's header declares, read without its data. Raises ValueError
    for a member that is not a `.npy` array."""
    with archive.zip.open(f"{key}.npy") as f:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, _ = read(f)
    return tuple(int(n) for n in shape)


_OPS: dict[str, Callable] = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a**b,
    "matmul": lambda a, b: jnp.matmul(a, b),
    "neg": lambda a: -a,
    "transpose": lambda a: jnp.transpose(a),
}


# ---- parameters as one vector -----------------------------------------------------------


class ParamLayout:
    """The model's parameters as one flat vector θ ∈ R^D, in declaration order."""

    def __init__(self, model: ir.Model):
        self.names = tuple(p.name for p in model.params)
        self.shapes = tuple(p.shape for p in model.params)
        self.sizes = tuple(int(np.prod(s)) for s in self.shapes)
        self.offsets = tuple(int(x) for x in np.cumsum((0,) + self.sizes)[:-1])
        self.dimension = int(sum(self.sizes))

    def flatten(self, params: Mapping[str, Array]) -> Array:
        return jnp.concatenate([jnp.ravel(params[n]) for n in self.names]) if self.names else jnp.zeros(0)

    def unflatten(self, theta: Array) -> dict[str, Array]:
        return {
            n: jnp.reshape(theta[o : o + s], shape)
            for n, shape, o, s in zip(self.names, self.shapes, self.offsets, self.sizes)
        }

    def slice_of(self, name: str) -> slice:
        i = self.names.index(name)
        return slice(self.offsets[i], self.offsets[i] + self.sizes[i])


# ---- a lowered model --------------------------------------------------------------------


class Lowered:
    """A checked model with its data made: the pure functions every later stage uses.

    **Arguments:**

    - `model`: the IR.
    - `seed`: the seed of data drawn without `seed = ...`.
    - `hooks`: implementations of record-only observables (see `Evaluator`).
    """

    def __init__(self, model: ir.Model, seed: int = 0, hooks: Mapping[str, Callable] | None = None):
        self.model = model
        self.layout = ParamLayout(model)
        self.folder = Path(model.path).resolve().parent if not model.path.startswith("<") else Path.cwd()
        self.hooks = dict(hooks or {})
        self.data = self.make_data(seed)
        stream_names = {s.name for s in model.streams}
        self.has_streams = bool(stream_names)
        ps = model.loss.per_sample if model.loss else None
        self.per_sample = ps
        self.samples_are_streams = ps is not None and ps.size is None

    # -- data --

    def make_data(self, seed: int) -> dict[str, Array]:
        ev = Evaluator(jax.random.PRNGKey(seed), folder=self.folder)
        data: dict[str, Array] = {}
        for d in self.model.data:
            value = jnp.broadcast_to(jnp.asarray(ev(d.value, data), dtype=_float()), d.shape)
            data[d.name] = value
        return data

    def draw_streams(self, key: Array, n: int) -> dict[str, Array]:
        """n independent samples of every stream (leading axis n)."""

        def one(k):
            ev = Evaluator(k, folder=self.folder)
            env = dict(self.data)
            for s in self.model.streams:
                env[s.name] = jnp.broadcast_to(jnp.asarray(ev(s.value, env), dtype=_float()), s.shape)
            return {s.name: env[s.name] for s in self.model.streams}

        return jax.vmap(one)(jax.random.split(key, n))

    # -- parameters --

    def init_params(self, key: Array) -> dict[str, Array]:
        ev = Evaluator(key, folder=self.folder)
        return {
            p.name: jnp.broadcast_to(jnp.asarray(ev(p.init, self.data), dtype=_float()), p.shape)
            for p in self.model.params
        }

    # -- the model's functions --

    def env(
        self,
        params: Mapping[str, Array],
        extra: Mapping[str, Array] | None = None,
        evaluator: Evaluator | None = None,
        fixed: Mapping[str, Array] | None = None,
    ) -> dict[str, Array]:
        """Data, parameters, lets and predictors (in dependency order); a let or predictor named
        in `fixed` takes that value instead of its definition's."""
        ev = evaluator or Evaluator(hooks=self.hooks, folder=self.folder)
        env = {**self.data, **params, **(extra or {})}
        fixed = fixed or {}
        for d in _ordered(self.model):
            env[d.name] = fixed[d.name] if d.name in fixed else ev(d.value, env)
        return env

    def predictors(self, params: Mapping[str, Array]) -> dict[str, Array]:
        env = self.env(params)
        return {p.name: env[p.name] for p in self.model.predictors}

    def sample_loss(
        self, params: Mapping[str, Array], sample: Mapping[str, Array], fixed: Mapping[str, Array] | None = None
    ) -> Array:
        """The loss of one sample: `sample` maps the binders (and streams) to arrays; `fixed` as for `env`."""
        ev = Evaluator(hooks=self.hooks, folder=self.folder)
        assert self.model.loss is not None  # a checked model has a loss (E206)
        return ev(self.model.loss.value, self.env(params, sample, ev, fixed))

    def samples(self, indices: Array | None = None) -> dict[str, Array]:
        """The dataset's samples (rows of the sources), keyed by binder name."""
        ps = self.per_sample
        assert ps is not None, "samples() of a model without a per-sample loss"
        out = {}
        for (name, _), src in zip(ps.binders, ps.sources):
            values = self.data[src]
            out[name] = values if indices is None else values[indices]
        return out

    def stream_samples(self, key: Array, n: int) -> dict[str, Array]:
        draws = self.draw_streams(key, n)
        if self.per_sample is None:
            return draws
        out = dict(draws)
        for (name, _), src in zip(self.per_sample.binders, self.per_sample.sources):
            out[name] = draws[src]
        return out

    def loss(self, params: Mapping[str, Array], key: Array | None = None, n_stream: int = 256) -> Array:
        """The training loss. Over a dataset: the mean of the per-sample losses. With streams,
        a Monte Carlo estimate from `n_stream` draws with `key` (fixed key: deterministic)."""
        ps = self.per_sample
        key = jax.random.PRNGKey(0) if key is None else key
        if ps is not None and ps.size is not None:  # over a dataset; streams drawn per sample
            batch = self.samples()
            if self.has_streams:
                batch = {**self.draw_streams(key, ps.size), **batch}
            return self.batch_loss(params, batch)
        if self.has_streams:
            draws = self.stream_samples(key, n_stream)
            return jnp.mean(jax.vmap(lambda s: self.sample_loss(params, s))(draws))
        return self.sample_loss(params, {})

    def batch_loss(
        self, params: Mapping[str, Array], batch: Mapping[str, Array], fixed: Mapping[str, Array] | None = None
    ) -> Array:
        """The mean loss over a batch of samples (leading axis of each entry)."""
        return jnp.mean(jax.vmap(lambda s: self.sample_loss(params, s, fixed))(batch))

    def act(self, symmetry: ir.Symmetry, params: Mapping[str, Array], g: Array) -> dict[str, Array]:
        """The symmetry's action g · θ (rules apply simultaneously; others unchanged)."""
        ev = Evaluator(folder=self.folder)
        env = {**self.data, **params, "g": g}
        out = dict(params)
        for a in symmetry.actions:
            out[a.param] = jnp.broadcast_to(ev(a.value, env), params[a.param].shape)
        return out

    def evaluate(
        self,
        e: ir.Expr,
        params: Mapping[str, Array],
        extra: Mapping[str, Array] | None = None,
        hooks: Mapping[str, Callable] | None = None,
    ) -> Array:
        """The value of `e` at `params`; `hooks` add to (or replace) the model's hooks, for
        record-only observables such as `charge(s)`."""
        ev = Evaluator(hooks={**self.hooks, **(hooks or {})}, folder=self.folder)
        return ev(e, self.env(params, extra, ev))


def _ordered(model: ir.Model):
    """Lets and predictors in an order where each comes after what it uses."""
    items = {d.name: d for d in (*model.lets, *model.predictors)}
    done: list = []
    seen: set[str] = set()

    def visit(d):
        if d.name in seen:
            return
        seen.add(d.name)
        for name in _refs(d.value):
            if name in items:
                visit(items[name])
        done.append(d)

    for d in items.values():
        visit(d)
    return done


def _refs(e: ir.Expr):
    return (x.name for x in ir.walk(e) if isinstance(x, ir.Ref))


def _float():
    return jnp.zeros(()).dtype
