"""Evidence: result files, the comparison of simulated statistics with the geometry engine's
predictions, progress reporting and plots."""

from .compare import Row as Row, compare as compare, render as render
from .results import load_checkpoint as load_checkpoint, save_checkpoint as save_checkpoint, write_results as write_results
