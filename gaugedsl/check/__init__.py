"""AST → IR: imports, names, shapes, symmetries and settings, with all errors collected."""

from .loader import Loader as Loader
from .loader import check_file as check_file
from .loader import check_text as check_text
