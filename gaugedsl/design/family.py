"""Which redundant parameterization realizes a design target, or why none does.

The family the designer can realize (docs/theory.md §4):

- **Hadamard products** z = A w = u₁ ⊙ … ⊙ u_L, i.e. w = A⁻¹(u₁ ⊙ … ⊙ u_L), with A the identity
  (any shape), or, on vectors, the cosine or Fourier basis, finite differences (z₀ = w₀) or an
  invertible data matrix. Symmetry (R_{>0})^{(L−1)n}; bias T(1 − 1/L) Σ_i log|(A w)_i| + const.
- **Factorizations** W = U Vᵀ of a matrix predictor with inner size r ≤ min(m, n). Symmetry
  GL(r); bias (T/2) Σ_{i,j} log(σ_i + σ_j) over W's r singular values.

Everything else is refused with a diagnostic on the design setting that asks for it.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .. import ir
from ..diagnostics import GaugeError, Span, error
from ..kinds import NOISES
from ..lowering import Lowered
from . import operators
from .operators import Operator
from .source import Source

FAMILY = (
    "realizable: sparsity of A w (A = identity, cosine, fourier, difference or an invertible "
    "square data matrix) through a depth-L Hadamard product (exponent 1 − 1/L), and low rank "
    "of a matrix predictor through W = U Vᵀ"
)
STDLIB_TEMPLATES = ("rescaling", "deep_rescaling", "deep3", "deep4", "gl_factorization")


@dataclasses.dataclass(frozen=True)
class Realization:
    """A design resolved: what to replace, by what, and the bias it must induce.

    - `kind`: `hadamard` (w = A⁻¹(u₁ ⊙ … ⊙ u_L)) or `factorization` (W = U Vᵀ).
    - `replaces`: the parameters the new factors replace; `drops`: the symmetries that acted
      on them (records of their charges move to the new symmetry).
    - `T`: the temperature of the bias (`strength`, or the noise model's T), `None` if unknown.
    - `init_std`, `init_seed`: each factor's initializer `normal(0, init_std, seed = ...)`.
    - `factors`, `symmetry`: the names the designed model declares.
    """

    target: str
    predictor: str
    shape: tuple[int, ...]
    kind: str
    depth: int
    rank: int | None
    operator: Operator | None
    replaces: tuple[str, ...]
    drops: tuple[str, ...]
    predictor_is_param: bool
    T: float | None
    T_from: str
    strength: float | None
    init_std: float
    init_seed: int | None
    lr: float | None
    factors: tuple[str, ...]
    symmetry: str

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def exponent(self) -> float:
        return 1.0 - 1.0 / self.depth

    def z(self, w: np.ndarray) -> np.ndarray:
        """The analysed coordinates z = A w (flattened)."""
        w = np.asarray(w, dtype=np.float64)
        return np.ravel(self.operator.apply(w) if self.operator is not None else w)

    def target_bias(self, w: np.ndarray, T: float) -> float:
        """The bias asked for, at predictor value w."""
        if self.kind == "factorization":
            s = np.linalg.svd(np.asarray(w, dtype=np.float64), compute_uv=False)[: self.rank]
            return 0.5 * T * float(np.sum(np.log(s[:, None] + s[None, :])))
        return T * self.exponent * float(np.sum(np.log(np.abs(self.z(w)))))

    def expected_constant(self, T: float) -> float:
        """induced − target on the slice: per coordinate det G = L |z|^{2(L−1)/L} gives
        (T/2) n log L; the GL(r) Gram is exactly Π_{i,j}(σ_i + σ_j)."""
        return 0.0 if self.kind == "factorization" else 0.5 * T * self.size * math.log(self.depth)

    def formula(self) -> str:
        if self.kind == "factorization":
            return f"(T/2) Σ_{{i,j}} log(σ_i + σ_j) over the {self.rank} singular values σ of {self.predictor}"
        coeff = "(T/2)" if self.depth == 2 else f"T·(1 − 1/{self.depth})"
        op = self.operator  # None only for a factorization
        z = self.predictor if op is None or op.matrix is None else f"({op.symbol} {self.predictor})"
        return f"{coeff} Σ_i log|{z}_i|"

    def realized_as(self) -> str:
        """The new parameterization, e.g. `D w = w1 ⊙ w2 (depth 2)`."""
        if self.kind == "factorization":
            return f"{self.predictor} = {self.factors[0]} {self.factors[1]}ᵀ (inner size {self.rank})"
        first, op = self.factors[0], self.operator
        prod = " ⊙ ".join(self.factors) if len(self.factors) > 1 else f"Π_l {first}[l]"
        lhs = self.predictor if op is None or op.matrix is None else f"{op.symbol} {self.predictor}"
        return f"{lhs} = {prod} (depth {self.depth})"

    def group(self) -> str:
        """The symmetry group of the new parameterization."""
        if self.kind == "factorization":
            return f"GL({self.rank})"
        return f"(R_>0)^{(self.depth - 1) * self.size}"


def _number(v) -> float | None:
    return float(v.value) if isinstance(v, ir.Const) and not isinstance(v.value, list) else None


def realize(src: Source) -> Realization:
    """Resolve the source's design block; raises `GaugeError` when the target is out of the
    family (the message says what is realizable)."""
    model = src.model
    d = src.design
    target = d.get("target")
    span = src.design.span_of

    pred = _predictor(src)
    is_param = any(p.name == pred for p in model.params)
    shape = model.param(pred).shape if is_param else next(p for p in model.predictors if p.name == pred).shape
    replaces, drops = _replaced(src, pred, is_param)

    # ---- the kind of parameterization ----
    op_name = d.get("operator")
    if target == "low_rank" or (target == "spectral_sparsity" and len(shape) == 2):
        if len(shape) != 2:
            raise _err(
                "E603",
                span("target"),
                f"low_rank needs a matrix predictor; '{pred}' has shape {list(shape)}",
                "for a vector, ask for sparsity (of A w, operator = ...); " + FAMILY,
            )
        if op_name not in (None, "identity"):
            raise _err(
                "E603",
                span("operator"),
                f"{target} of a matrix is about its singular values; an analysis operator does not apply",
                "remove the operator (W = U Vᵀ induces (T/2) Σ log(σ_i + σ_j))",
            )
        kind = "factorization"
    else:
        kind = "hadamard"
        if target == "total_variation":
            if op_name not in (None, "difference"):
                raise _err(
                    "E603",
                    span("operator"),
                    f"total_variation is sparsity of the finite differences, not of '{op_name}'",
                    f"drop the operator, or ask for target = sparsity with operator = {op_name}",
                )
            op_name = "difference"
        elif op_name is None:
            op_name = "cosine" if target == "spectral_sparsity" else "identity"
        if op_name != "identity" and len(shape) != 1:
            raise _err(
                "E603",
                span("operator" if d.get("operator") else "target"),
                f"the operator '{op_name}' acts on vectors; '{pred}' has shape {list(shape)}",
                "use operator = identity (elementwise sparsity), or design a vector predictor",
            )
    if d.get("rank") is not None and kind != "factorization":
        raise _err(
            "E603",
            span("rank"),
            "rank is the inner size of a factorization; this target is realized by a Hadamard product",
            "remove rank, or ask for target = low_rank of a matrix predictor",
        )

    depth = _depth(src, kind)
    rank = None
    if kind == "factorization":
        rank = d.get("rank", min(shape))
        if rank > min(shape):
            raise _err(
                "E605",
                span("rank"),
                f"rank {rank} exceeds min{tuple(shape)} = {min(shape)}: the extra directions make the GL({rank}) Gram singular",
                f"use rank ≤ {min(shape)}",
            )

    taken = src.names() | set(STDLIB_TEMPLATES)
    fresh = _Fresh(taken - set(replaces) - set(drops))
    operator = None
    if kind == "hadamard":
        assert op_name is not None  # the hadamard branch above chose one
        matrix = None
        if op_name not in ("identity", "cosine", "fourier", "difference"):
            matrix = _data_matrix(src, op_name, shape[0])
        operator = operators.make(op_name, shape[0] if shape else 1, fresh, matrix)

    T, T_from = _temperature(src)
    init_std, init_seed = _init(src, pred, is_param, kind, depth, rank)
    if kind == "factorization":
        factors = (fresh("U"), fresh("V"))
        sym = fresh("gl")
    else:
        factors = tuple(fresh(f"{pred}{i}") for i in range(1, depth + 1)) if depth <= 4 else (fresh(f"{pred}_factors"),)
        sym = fresh("increments" if op_name == "difference" else "balance" if depth == 2 else "depth")
    return Realization(
        target=target, predictor=pred, shape=tuple(shape), kind=kind, depth=depth, rank=rank,
        operator=operator, replaces=replaces, drops=drops, predictor_is_param=is_param, T=T,
        T_from=T_from, strength=d.get("strength"), init_std=init_std, init_seed=init_seed,
        lr=d.get("lr"), factors=factors, symmetry=sym,
    )  # fmt: skip


# ---- the pieces ----------------------------------------------------------------------------


class _Fresh:
    """Unused names: `base`, else `base_2`, `base_3`, ..."""

    def __init__(self, taken: set[str]):
        self.taken = set(taken)

    def __call__(self, base: str) -> str:
        name, k = base, 2
        while name in self.taken:
            name, k = f"{base}_{k}", k + 1
        self.taken.add(name)
        return name


def _err(code: str, span: Span | None, message: str, hint: str):
    return GaugeError([error(code, span, message, hint)])


def _predictor(src: Source) -> str:
    model = src.model
    name = src.design.get("predictor")
    if name is not None:
        return name
    if len(model.predictors) == 1:
        return model.predictors[0].name
    if not model.predictors and len(model.params) == 1:
        return model.params[0].name
    have = ", ".join(p.name for p in model.predictors) or ", ".join(p.name for p in model.params)
    raise _err(
        "E606",
        src.design_block.span,
        f"which predictor is the bias about? The model has {have}",
        "say which: predictor = NAME (a predictor, or the parameter itself in a vanilla model)",
    )


def _refs(e: ir.Expr):
    """Every name an IR expression uses, with its span."""
    for x in ir.walk(e):
        if isinstance(x, ir.Ref):
            yield x
        elif isinstance(x, ir.Call) and x.func in ("charge", "logdet_gram"):
            yield ir.Ref("symmetry", x.option("s"), (), x.span)


def _replaced(src: Source, pred: str, is_param: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The parameters the design replaces and the symmetries that go with them."""
    model = src.model
    if is_param:
        p = model.param(pred)
        if p.manifold.kind != "R":
            raise _err(
                "E606",
                p.span,
                f"'{pred}' lives on {p.manifold.kind}; the designer re-expresses real arrays (R[...])",
                "design a parameter of type R[...]",
            )
        replaced = {pred}
    else:
        value = next(p for p in model.predictors if p.name == pred).value
        refs = list(_refs(value))
        for r in refs:
            if r.kind in ("let", "predictor"):
                raise _err(
                    "E606",
                    r.span,
                    f"the predictor '{pred}' uses the {r.kind} '{r.name}'; the designer replaces the parameters a predictor is made of",
                    f"write '{pred}' directly in terms of parameters",
                )
        replaced = {r.name for r in refs if r.kind == "param"}
        if not replaced:
            raise _err(
                "E606",
                src.design.span_of("predictor"),
                f"the predictor '{pred}' depends on no parameter",
                "design a predictor made of parameters",
            )
        # The replaced parameters must not be used by anything but the predictor.
        uses = [("the loss", model.loss.value)] if model.loss else []
        uses += [(f"the let '{x.name}'", x.value) for x in model.lets]
        uses += [(f"the predictor '{x.name}'", x.value) for x in model.predictors if x.name != pred]
        if model.run is not None:
            uses += [(f"the record '{i.label}'", i.value) for r in model.run.records for i in r.items]
        for what, e in uses:
            for r in _refs(e):
                if r.kind == "param" and r.name in replaced:
                    raise _err(
                        "E606",
                        r.span,
                        f"{what} uses the parameter '{r.name}', which the design replaces (it makes up '{pred}')",
                        f"use '{pred}' there instead of '{r.name}'",
                    )
    drops = []
    for s in model.symmetries:
        acted = {a.param for a in s.actions}
        if acted & replaced:
            if not acted <= replaced:
                raise _err(
                    "E606",
                    s.span,
                    f"the symmetry '{s.name}' acts on {', '.join(sorted(acted & replaced))} (replaced by the design) and on {', '.join(sorted(acted - replaced))}",
                    "the designer can drop a symmetry of the replaced parameters only; split this one",
                )
            drops.append(s.name)
    order = [p.name for p in model.params if p.name in replaced]
    return tuple(order), tuple(drops)


def _depth(src: Source, kind: str) -> int:
    d = src.design
    depth, exponent = d.get("depth"), d.get("exponent")
    if exponent is not None:
        L = 1.0 / (1.0 - exponent)
        if abs(L - round(L)) > 1e-9 or round(L) < 2:
            near = sorted({max(2, math.floor(L)), max(2, math.ceil(L))})
            options = " or ".join(f"{1 - 1 / k:.4g} (depth {k})" for k in near)
            raise _err(
                "E605",
                src.design.span_of("exponent"),
                f"the bias exponent {exponent:g} is not realizable: a depth-L product gives 1 − 1/L = 1/2, 2/3, 3/4, ...",
                f"the nearest are {options}",
            )
        if depth is not None and depth != round(L):
            raise _err(
                "E605",
                src.design.span_of("exponent"),
                f"exponent {exponent:g} means depth {round(L)}, but depth = {depth}",
                "set one of them",
            )
        depth = int(round(L))
    depth = 2 if depth is None else depth
    if kind == "factorization" and depth != 2:
        raise _err(
            "E605",
            src.design.span_of("exponent" if exponent is not None else "depth"),
            "deep factorizations W = W₁ ⋯ W_L are outside the family: their GL(r)^{L−1} bias has no closed form here",
            "use depth = 2 (W = U Vᵀ); " + FAMILY,
        )
    return depth


def _data_matrix(src: Source, name: str, n: int) -> np.ndarray:
    span = src.design.span_of("operator")
    shape = next(x.shape for x in src.model.data if x.name == name)
    if shape != (n, n):
        raise _err(
            "E604",
            span,
            f"the operator '{name}' is {shape[0]}×{shape[1]}; it must be square, {n}×{n}, to be inverted (w = {name}⁻¹ z)",
            "give an invertible n×n analysis operator (n = the predictor's size)",
        )
    value = np.asarray(Lowered(src.model).data[name], dtype=np.float64)
    cond = np.linalg.cond(value) if np.all(np.isfinite(value)) else np.inf
    if not np.isfinite(cond) or cond > 1e8:
        raise _err(
            "E604",
            span,
            f"the operator '{name}' is not invertible (condition number {cond:.3g})",
            "the designed model writes w = A⁻¹ z: give an invertible analysis operator (condition number below 1e8)",
        )
    return value


def _temperature(src: Source) -> tuple[float | None, str]:
    model = src.model
    strength = src.design.get("strength")
    noise = model.noise
    if strength is not None:
        if noise is not None and not NOISES[noise.kind].temperature:
            raise _err(
                "E608",
                src.design.span_of("strength"),
                f"strength sets the temperature T of isotropic or projected noise; the model's {noise.kind} noise has no T of its own",
                "remove strength (the bias is then reported per unit T), or use projected noise",
            )
        return float(strength), "strength"
    if noise is not None and NOISES[noise.kind].temperature:
        return float(noise.get("T")), "the noise model"
    return None, ""


def _init(src: Source, pred: str, is_param: bool, kind: str, depth: int, rank: int | None) -> tuple[float, int | None]:
    """Each factor's initial standard deviation: the `init` setting, else the predictor's
    scale σ made into factors: σ^{1/L} for a product of L, (σ/√r)^{1/2} for U Vᵀ."""
    model = src.model
    init = src.design.get("init")
    seed = None
    if init is not None:
        return float(init), None
    sigma = None
    if is_param:
        e = model.param(pred).init
        if (
            isinstance(e, ir.Call)
            and e.func == "normal"
            and len(e.args) == 2
            and _number(e.args[0]) == 0
            and (std := _number(e.args[1]))
        ):
            sigma, seed = abs(std), e.option("seed")
    if sigma is None:
        import jax

        lw = Lowered(model)
        seed_run = model.run.get("seed", 0) if model.run else 0
        w = np.asarray(
            lw.predictors(lw.init_params(jax.random.PRNGKey(seed_run)))[pred]
            if not is_param
            else lw.init_params(jax.random.PRNGKey(seed_run))[pred]
        )
        rms = float(np.sqrt(np.mean(w**2))) if w.size else 0.0
        if not rms > 0 or not np.isfinite(rms):
            where = model.param(pred).span if is_param else src.design.span_of("predictor")
            raise _err(
                "E607",
                where,
                f"'{pred}' starts at zero: its factors would start at a saddle where gradient descent never moves",
                "give the predictor a small random initializer, or set init = <std of each factor> in the design block",
            )
        sigma = float(f"{rms:.2g}")  # the scale, not the draw: keep the generated text readable
    if kind == "factorization":
        assert rank is not None  # a factorization has an inner size
        return float(f"{math.sqrt(sigma / math.sqrt(rank)):.6g}"), seed
    return float(f"{sigma ** (1.0 / depth):.6g}"), seed
