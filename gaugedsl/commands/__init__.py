"""The subcommands of `gaugedsl`. Each module has `register(subparsers)`, which adds its
parser and sets `handler(args, sources) -> exit code`."""

from . import bias, check, fmt, lsp

COMMANDS = [check, bias, fmt, lsp]
