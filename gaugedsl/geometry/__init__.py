"""Geometry of declared symmetries: generators, Gram matrices, charges, the gauge slice,
the horizontal projector, the quotient metric, the bias and the predicted stationary law."""

from .algebra import basis_names as basis_names, exp_map as exp_map
from .checks import (
    degeneracy as degeneracy,
    invariance_violations as invariance_violations,
    symmetry_violations as symmetry_violations,
)
from .engine import Geometry as Geometry, per_geometry as per_geometry
from .law import LawUnavailable as LawUnavailable, PredictedLaw as PredictedLaw, predicted_law as predicted_law
from .structure import Pattern as Pattern, recognise as recognise
