"""The subcommands of `gaugedsl`. Each module has `register(subparsers)`, which adds its
parser and sets `handler(args, sources) -> exit code`."""

from . import bias, check, fmt, lsp, run

COMMANDS = [check, bias, run, fmt, lsp]
