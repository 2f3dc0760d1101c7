"""Slice coordinates: charts of the gauge slice, for sampling the predicted law and for the
dynamics on the quotient (docs/theory.md §9).

Under projected noise, with the charges at rest, the stationary law lives on the gauge slice
Σ = {χ = 0} and is `exp(−L/T)` times Σ's own surface measure ("Gibbs times the slice's own
volume"; in predictor coordinates `exp(−L(w)/T) det G(θ*(w))^{−1/2}`). That holds for the torus
actions charted here, whose every generator moves the charges; a GL(r ≥ 2) factorization has O(r)
fibres inside its slice and is charted by gl_chart.py instead (docs/theory.md §9.1(d)). A chart `θ = φ(s)` of Σ
turns it into a density in s: `exp(−L(φ(s))/T) sqrt(det DφᵀDφ)`.

Two shapes of slice have exact charts here, both found from the generators of a *torus* action
(every generator rescales coordinates: `ξ_a(θ)_j = M_aj θ_j`, a coordinate possibly moved by
several generators), never from names. Coordinates linked by generators form components; the
charges `χ_a = ½ Σ_j M_aj θ_j²` vanish on a component when

- **line**: the component's generators span every traceless exponent vector of its L coordinates
  (depth-L product chains: u ⊙ v, deep3, telescope). Then χ = 0 forces |θ_j| equal across the
  component: the slice is a union of lines θ_j = σ_j s through the origin, one per relative sign
  pattern σ, and `DφᵀDφ = L` is constant. A particle keeps its line (docs/theory.md §9.2), so a
  chart carries the sign pattern of one particle.
- **pair**: one generator with exponent +1 on a block P and −1 on a block N (neurons, attention
  columns): χ = 0 is |θ_P| = |θ_N|, a cone, charted by `θ_P = a` free and `θ_N = |a| z/|z|` with an
  auxiliary z ∈ R^|N| of density exp(−|z|²/2) (its direction is uniform on the sphere); the
  cone's surface measure is `√2 |a|^(|N|−1) da dΩ`, so the log-density gains `(|N|−1) log|a|`.
  (With |P| = |N| = 1 this is the line with L = 2; lines take precedence.)

Coordinates no generator moves are components of their own (s = θ_j). A `Positive` coordinate of
a line or free component is `|s|`, with s itself free: the dynamics reflects that coordinate at 0
while the others of its line go on, so a line through the origin continues with the `Positive`
coordinates mirrored (docs/theory.md §9.2: for w = u·v with u on `Positive`, w = s|s| takes both
signs). `Sphere` and `Stiefel` parameters have no chart here.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from ..kinds import MANIFOLDS
from ..kinds.manifolds import coordinates_where
from .engine import Geometry


class ChartUnavailable(Exception):
    """Why the slice has no chart here (said to the user as the reason for `no prediction`)."""


@dataclasses.dataclass(frozen=True)
class TorusForm:
    """The exponent matrix of a torus action: `exp(a)·θ = θ ⊙ exp(Mᵀa)`, M of shape (k, D)."""

    exponents: np.ndarray

    @staticmethod
    def detect(geo: Geometry) -> "TorusForm | None":
        if not geo.symmetries:
            return TorusForm(np.zeros((0, geo.dimension)))
        rng = np.random.default_rng(0)
        dtype = jnp.zeros(()).dtype
        tol = 1e-9 if dtype == jnp.float64 else 1e-4
        gens = jax.jit(geo.generators)
        theta = rng.uniform(0.5, 1.5, geo.dimension) * rng.choice([-1.0, 1.0], geo.dimension)
        m = np.asarray(gens(jnp.asarray(theta, dtype))) / theta
        m = np.where(np.abs(m) > tol, m, 0.0)
        # exponents of declared actions are integers or simple ratios: snap float32 rounding onto them, so the
        # exact tests below (traceless, ±1 blocks) do not depend on the precision
        m = np.where(np.abs(m - np.round(m)) < 10 * tol, np.round(m), m)
        other = rng.normal(size=geo.dimension)
        if not np.allclose(np.asarray(gens(jnp.asarray(other, dtype))), m * other, rtol=10 * tol, atol=10 * tol):
            return None  # not a rescaling of each coordinate: no torus form
        return TorusForm(m)

    def components(self) -> np.ndarray:
        """For each coordinate, the index of its component (coordinates linked by generators)."""
        k, d = self.exponents.shape
        parent = np.arange(d)

        def find(i):
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for a in range(k):
            moved = np.flatnonzero(self.exponents[a])
            for j in moved[1:]:
                parent[find(j)] = find(moved[0])
        roots = np.array([find(i) for i in range(d)])
        _, label = np.unique(roots, return_inverse=True)
        return label


@dataclasses.dataclass(frozen=True)
class Component:
    """One component of the slice: its coordinates and its shape (`line`, `pair`, `free`)."""

    kind: str
    coords: np.ndarray  # indices into θ
    up: np.ndarray | None = None  # pair: the block with exponent +1 (indices into θ)
    down: np.ndarray | None = None  # pair: the block with exponent −1
    positive: bool = False  # some coordinate lives on `Positive` (it is |s| there; s is free)

    def blocks(self) -> tuple[np.ndarray, np.ndarray]:
        """(up, down) of a `pair` component."""
        if self.up is None or self.down is None:
            raise ValueError(f"a {self.kind} component has no up and down blocks")
        return self.up, self.down


class SliceChart:
    """A chart of the gauge slice in slice coordinates (module docstring).

    **Arguments:** `geo`, the model's `Geometry`. Raises `ChartUnavailable` with the reason when
    the model's slice has neither shape.

    The coordinates are laid out as one flat vector: one entry per `line` or `free` component,
    then for each `pair` component its `a` block (|P| entries) and its auxiliary `z` (|N|).
    """

    def __init__(self, geo: Geometry):
        self.geo = geo
        model = geo.model
        layout = geo.layout
        for p in model.params:
            if not MANIFOLDS[p.manifold.kind].charted:
                raise ChartUnavailable(
                    f"parameter '{p.name}' lives on {p.manifold.kind}: no slice chart for curved manifolds"
                )
        positive = coordinates_where(model, layout, "absolute")
        form = TorusForm.detect(geo)
        if form is None:
            raise ChartUnavailable("the symmetries do not act by rescaling coordinates (not a torus action), "
                                   "so the slice is not a union of lines or cones")  # fmt: skip
        m = form.exponents
        label = form.components()
        comps: list[Component] = []
        for c in range(label.max() + 1 if label.size else 0):
            coords = np.flatnonzero(label == c)
            gens = m[:, coords]
            gens = gens[np.any(gens != 0, axis=1)]
            pos = bool(positive[coords].any())
            if gens.shape[0] == 0:
                comps.append(Component("free", coords, positive=pos))
                continue
            size = coords.size
            traceless = np.allclose(gens.sum(axis=1), 0.0)
            if traceless and np.linalg.matrix_rank(gens) == size - 1:
                comps.append(Component("line", coords, positive=pos))
                continue
            if gens.shape[0] == 1 and set(np.unique(gens[0])) <= {-1.0, 1.0}:
                up, down = coords[gens[0] > 0], coords[gens[0] < 0]
                if up.size and down.size:
                    if positive[down].any() or positive[up].any():
                        raise ChartUnavailable("a rescaled block on Positive: no cone chart for it here")
                    comps.append(Component("pair", coords, up, down))
                    continue
            raise ChartUnavailable(
                f"the generators moving coordinates {coords[:6].tolist()}{'…' if size > 6 else ''} neither span "
                "all traceless rescalings of them (a product chain) nor form one balanced pair of blocks, so the "
                "charges do not cut the slice into lines or cones"
            )
        self.components = tuple(comps)
        self._layout()

    def _layout(self):
        offset = 0
        starts = []
        for c in self.components:
            starts.append(offset)
            offset += sum(b.size for b in c.blocks()) if c.kind == "pair" else 1
        self.starts = tuple(starts)
        self.dimension = offset
        self.all_lines = all(c.kind in ("line", "free") for c in self.components)
        # line/free components as arrays, for a vectorized embed
        simple = [(i, c) for i, c in enumerate(self.components) if c.kind != "pair"]
        self._line_coord = np.concatenate([c.coords for _, c in simple]) if simple else np.zeros(0, int)
        self._line_index = (np.concatenate([np.full(c.coords.size, self.starts[i]) for i, c in simple])
                            if simple else np.zeros(0, int))  # fmt: skip
        self._line_abs = self._positive_coords()[self._line_coord]  # these coordinates are |s|
        self.metric = np.ones(self.dimension)
        # s > 0 constraints of the chart's own coordinates: none, since a `Positive` coordinate is |s|
        self.positive = np.zeros(self.dimension, bool)
        for i, c in enumerate(self.components):
            if c.kind != "pair":
                self.metric[self.starts[i]] = c.coords.size  # DφᵀDφ = L on a line of L coordinates

    # ---- sign patterns ----

    def signs(self, theta) -> np.ndarray:
        """σ ∈ {±1}^D of a point: the sign of each coordinate relative to the one its component's s
        follows (a `Positive` coordinate if any, else the first). Pair and free components: +1."""
        theta = np.asarray(theta)
        out = np.ones(theta.shape, theta.dtype)
        for c in self.components:
            if c.kind != "line":
                continue
            lead = c.coords[np.argmax(self._positive_mask(c))] if c.positive else c.coords[0]
            ref = np.where(theta[..., lead] < 0, -1.0, 1.0)
            out[..., c.coords] = np.where(theta[..., c.coords] < 0, -1.0, 1.0) * ref[..., None]
        return out

    def _positive_coords(self) -> np.ndarray:
        return coordinates_where(self.geo.model, self.geo.layout, "absolute")

    def _positive_mask(self, c: Component) -> np.ndarray:
        return self._positive_coords()[c.coords]

    # ---- the chart ----

    def embed(self, s, sigma):
        """θ = φ(s) on the line pattern σ (jit- and vmap-able); `Positive` coordinates of lines are |s|."""
        theta = jnp.zeros(self.geo.dimension, s.dtype)
        if self._line_coord.size:
            on_line = s[self._line_index]
            value = jnp.where(self._line_abs, jnp.abs(on_line), jnp.asarray(sigma, s.dtype)[self._line_coord] * on_line)
            theta = theta.at[self._line_coord].set(value)
        for i, c in enumerate(self.components):
            if c.kind == "pair":
                up, down = c.blocks()
                a = s[self.starts[i] : self.starts[i] + up.size]
                z = s[self.starts[i] + up.size : self.starts[i] + up.size + down.size]
                theta = theta.at[up].set(a)
                theta = theta.at[down].set(jnp.linalg.norm(a) * z / jnp.linalg.norm(z))
        return theta

    def loss_point(self, s, sigma):
        """A θ on the orbit of φ(s) at which the sampler evaluates the loss: φ(s) itself here."""
        return self.embed(s, sigma)

    def log_volume(self, s):
        """log of the slice's surface measure in these coordinates, up to a constant (and the
        auxiliary variables' own density for pair charts)."""
        out = jnp.zeros((), s.dtype)
        for i, c in enumerate(self.components):
            if c.kind == "pair":
                up, down = c.blocks()
                a = s[self.starts[i] : self.starts[i] + up.size]
                z = s[self.starts[i] + up.size : self.starts[i] + up.size + down.size]
                out = out + (down.size - 1) * jnp.log(jnp.linalg.norm(a)) - 0.5 * jnp.sum(z * z)
        return out

    def coordinates(self, theta) -> np.ndarray:
        """s of a point on the slice (e.g. `geo.project_to_slice(θ0)`), with its own sign pattern:
        `embed(coordinates(θ), signs(θ)) == θ`. Pair charts take z = the unit direction of θ_N."""
        theta = np.asarray(theta)
        s = np.zeros(theta.shape[:-1] + (self.dimension,), theta.dtype)
        sigma = self.signs(theta)
        for i, c in enumerate(self.components):
            if c.kind == "pair":
                up, down = c.blocks()
                s[..., self.starts[i] : self.starts[i] + up.size] = theta[..., up]
                norm = np.linalg.norm(theta[..., down], axis=-1, keepdims=True)
                s[..., self.starts[i] + up.size : self.starts[i] + up.size + down.size] = theta[..., down] / np.maximum(
                    norm,
                    np.finfo(theta.dtype).tiny,  # 1e-300 is 0 in float32
                )
            else:
                signed = sigma[..., c.coords] * theta[..., c.coords]
                s[..., self.starts[i]] = np.sign(signed[..., 0]) * np.sqrt(np.mean(signed**2, axis=-1))
        return s
