"""The subcommands of `gaugedsl`. Each module has `register(subparsers)`, which adds its
parser and sets `handler(args, sources) -> exit code`."""

from . import bias, check, design, fmt, lsp, run, symmetries

COMMANDS = [check, bias, symmetries, run, design, fmt, lsp]
