"""Evidence: result files, the comparison of simulated statistics with the geometry engine's
predictions, progress reporting and plots."""

from .compare import Row as Row
from .compare import compare as compare
from .compare import render as render
from .results import load_checkpoint as load_checkpoint
from .results import save_checkpoint as save_checkpoint
from .results import write_results as write_results
