"""Geometry of declared symmetries: generators, Gram matrices, charges, the gauge slice,
the horizontal projector, the quotient metric, the bias and the predicted stationary law."""

from .algebra import basis_names as basis_names
from .algebra import exp_map as exp_map
from .checks import (
    degeneracy as degeneracy,
)
from .checks import (
    invariance_violations as invariance_violations,
)
from .checks import (
    symmetry_violations as symmetry_violations,
)
from .engine import Geometry as Geometry
from .engine import per_geometry as per_geometry
from .law import LawUnavailable as LawUnavailable
from .law import PredictedLaw as PredictedLaw
from .law import predicted_law as predicted_law
from .structure import Pattern as Pattern
from .structure import recognise as recognise
