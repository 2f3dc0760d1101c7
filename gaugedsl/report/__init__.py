"""Evidence: result files, the comparison of simulated statistics with the geometry engine's
predictions, progress reporting and plots."""

from .compare import Row as Row
from .compare import compare as compare
from .compare import render as render
from .results import remove_interrupted_writes as remove_interrupted_writes
from .results import remove_results as remove_results
from .results import write_results as write_results
