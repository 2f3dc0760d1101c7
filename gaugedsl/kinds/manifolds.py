"""Manifolds for parameters: one class per kind, with its constraint and how the dynamics keeps
a parameter on it.

We integrate in the ambient coordinates θ ∈ R^D — the coordinates the loss, the symmetry
actions, the generators and the charges are written in — and constrain each step
(`gaugedsl/dynamics/manifolds.py` applies these per parameter block):

- `Sphere[n]` and `Stiefel[n, k]`: the drift and the noise are projected onto the tangent
  space (`v − (x·v) x`, resp. `Z − X sym(XᵀZ)`), and after each step the point is mapped back
  by the closest-point retraction (`x/|x|`, resp. the polar factor `X (XᵀX)^{-1/2}`). A
  projected Euler step followed by the closest-point projection reproduces the Itô drift of
  Brownian motion on the embedded manifold (for the sphere: `−(n−1)T x dt`, from
  `|x + Pξ| = 1 + |Pξ|²/2 + …`), so the stationary law is `exp(−L/T)` with respect to the
  surface measure — the same law the geometry engine reasons about.
- `Positive[n]`: the tangent space is all of R^n, so nothing is projected; a step that
  would leave the orthant is reflected, `p → |p|`. Reflection keeps the Euclidean Gibbs law
  `exp(−L/T) dp` on the orthant (log coordinates would change the reference measure to
  `dp/p` and so the stationary law).
- `R[...]`: unconstrained.
"""

from __future__ import annotations

# JAX is imported inside the methods that compute: the checker reads these registries, and
# `gaugedsl check` and the language server start without loading JAX.
import numpy as np

Shape = tuple[int, ...]


class ManifoldKind:
    """A manifold family. Subclasses set the class attributes and override what differs.

    - `name`, `doc`, `min_dims`, `max_dims`: as for groups (`groups.GroupKind`).
    - `constrained`: the dynamics must keep a parameter on it (`tangent`, `retract`, `violation`).
    - `projects`: its tangent space is a proper subspace, so projected noise depends on θ.
    - `absolute`: a coordinate is kept by reflection at 0 (`Positive`): the slice charts read it
      as |s|, and the reflection keeps every θ_j² (hence the charges of a diagonal action).
    - `charted`: the slice charts (lines, cones, GL) handle it; curved manifolds have none.
    - `conic`: closed under dilation θ → cθ (c > 0) and unbounded, so a flat loss on it has
      infinite mass (`geometry.normalisable.bounded_loss`); compact manifolds are not.
    - `preserved_by`: which actions keep a parameter on it (E904's hint).
    - `init_hint`: how to write an initializer on it (E807's hint).
    - `default_init_wrappers`, `default_init_call`: the initializer of a parameter declared
      without one — `normal(0, 1)` wrapped by these functions, or this nullary call instead.
    """

    name: str = ""
    doc: str = ""
    min_dims: int = 0
    max_dims: int | None = None
    constrained: bool = True
    projects: bool = False
    absolute: bool = False
    charted: bool = False
    conic: bool = False
    preserved_by: str = ""
    init_hint: str = ""
    default_init_wrappers: tuple[str, ...] = ()
    default_init_call: str | None = None

    def validate(self, dims: Shape) -> str | None:
        """What is wrong with these sizes, or None."""
        return None

    def block_shape(self, shape: Shape, size: int) -> Shape:
        """The shape its block of θ is handled in (a Sphere as one vector)."""
        return tuple(shape)

    def tangent(self, x, v):
        """The orthogonal projection of v onto the tangent space at x (block-shaped arrays)."""
        return v

    def retract(self, x):
        """Back onto the manifold after a step."""
        return x

    def violation(self, x):
        """How far x is from the manifold (0 on it)."""
        import jax.numpy as jnp

        return jnp.zeros((), x.dtype)

    def describe_violation(self, v: float) -> str:
        """`violation`'s value in words (E904)."""
        return f"{v:.3g} off"

    def random_point(self, shape: Shape, rng: np.random.Generator) -> np.ndarray:
        """A generic point (the symmetry checks measure actions there)."""
        return rng.normal(size=shape)


class Real(ManifoldKind):
    name, doc = "R", "real arrays; `R` alone is a scalar"
    constrained, charted, conic = False, True, True


class Positive(ManifoldKind):
    name, doc = "Positive", "arrays with positive entries"
    absolute, charted, conic = True, True, True
    preserved_by = "an action on a Positive parameter must multiply it by positive factors (Scale, Diag)"
    init_hint = "use a positive initializer, e.g. abs(normal(1, 0.1))"
    default_init_wrappers = ("abs",)

    def retract(self, x):
        import jax.numpy as jnp

        return jnp.abs(x)

    def violation(self, x):
        import jax.numpy as jnp

        return jnp.max(jnp.where(x > 0, 0.0, 1.0 - x))

    def describe_violation(self, v):
        return f"a coordinate down to {1 - v:.3g}"  # v = 1 − x at the least x ≤ 0

    def random_point(self, shape, rng):
        # three decades down to 1e-3, so that an action that can cross 0 does so
        return 10.0 ** rng.uniform(-3.0, 0.0, size=shape)


class Sphere(ManifoldKind):
    name, doc = "Sphere", "unit vectors in R^n"
    min_dims = max_dims = 1
    projects = True
    preserved_by = "an action on a Sphere parameter must rotate it (O[n], SO[n]); rescaling it leaves the sphere"
    init_hint = "normalize(...) the initializer"
    default_init_wrappers = ("normalize",)

    def validate(self, dims):
        return "Sphere[n] needs n ≥ 2 (unit vectors in R^n)" if dims[0] < 2 else None

    def block_shape(self, shape, size):
        return (size,)

    def tangent(self, x, v):
        import jax.numpy as jnp

        return v - jnp.dot(x, v) * x / jnp.dot(x, x)

    def retract(self, x):
        import jax.numpy as jnp

        return x / jnp.linalg.norm(x)

    def violation(self, x):
        import jax.numpy as jnp

        return jnp.abs(1.0 - jnp.linalg.norm(x))

    def describe_violation(self, v):
        return f"| |x| − 1 | up to {v:.3g}"

    def random_point(self, shape, rng):
        x = rng.normal(size=shape)
        return x / np.linalg.norm(x)


class Stiefel(ManifoldKind):
    name, doc = "Stiefel", "n×k matrices with orthonormal columns"
    min_dims = max_dims = 2
    projects = True
    preserved_by = "an action on a Stiefel parameter must multiply it on the right by orthogonal matrices (O[r], SO[r])"
    init_hint = "use orthonormal()"
    default_init_call = "orthonormal"

    def validate(self, dims):
        n, k = dims
        return None if 1 <= k <= n else f"Stiefel[n, k] needs 1 ≤ k ≤ n, got n = {n}, k = {k}"

    def tangent(self, x, v):
        s = x.T @ v
        return v - x @ (0.5 * (s + s.T))

    def retract(self, x):
        import jax.numpy as jnp

        # Polar factor X (XᵀX)^{-1/2}, by the eigendecomposition of the small k×k XᵀX.
        eig, vec = jnp.linalg.eigh(x.T @ x)
        x = x @ (vec * (1.0 / jnp.sqrt(eig))) @ vec.T
        # one Newton–Schulz polish, X(3I − XᵀX)/2: eigh leaves ~1e-6 in float32
        return 0.5 * x @ (3.0 * jnp.eye(x.shape[1], dtype=x.dtype) - x.T @ x)

    def violation(self, x):
        import jax.numpy as jnp

        return jnp.max(jnp.abs(x.T @ x - jnp.eye(x.shape[1], dtype=x.dtype)))

    def describe_violation(self, v):
        return f"max |XᵀX − I| up to {v:.3g}"

    def random_point(self, shape, rng):
        q, r = np.linalg.qr(rng.normal(size=shape))
        return q * np.sign(np.diag(r))


MANIFOLDS: dict[str, ManifoldKind] = {k.name: k for k in (Real(), Positive(), Sphere(), Stiefel())}


def coordinates_where(model, layout, flag: str) -> np.ndarray:
    """A mask over θ of the coordinates whose parameter's manifold has `flag` set (e.g.
    `"absolute"`: the `Positive` coordinates)."""
    out = np.zeros(layout.dimension, bool)
    for p in model.params:
        if getattr(MANIFOLDS[p.manifold.kind], flag):
            out[layout.slice_of(p.name)] = True
    return out
