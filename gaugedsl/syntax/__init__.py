"""Source text → AST (`parse`), with syntax diagnostics."""

from . import ast as ast
from .parser import grammar as grammar
from .parser import parse as parse
from .source import normalize as normalize
