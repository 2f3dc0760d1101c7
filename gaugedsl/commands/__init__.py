"""The subcommands of `gaugedsl`. Each module has `register(subparsers)`, which adds its
parser and sets `handler(args, sources) -> exit code`."""

from . import bias, check, design, fmt, lsp, run

COMMANDS = [check, bias, run, design, fmt, lsp]
