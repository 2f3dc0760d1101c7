"""AST → IR: imports, names, shapes, symmetries and settings, with all errors collected."""

from .loader import Loader as Loader, check_file as check_file, check_text as check_text
