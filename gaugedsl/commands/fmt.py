"""`gaugedsl fmt FILE... [--check]`: rewrite `.gauge` files in the canonical layout.

A folder stands for every `.gauge` file below it; `-` reads standard input and writes the
result to standard output. Files are replaced atomically (`gaugedsl.atomic`: a reader sees the
old file or the new one, never a part), keeping their permissions, and only when they change. `--check` writes nothing: it lists the files that
would change and exits 1 if there are any. A file that does not parse is reported and left
alone (exit 1).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..atomic import write_text as write_atomic
from ..diagnostics import GaugeError
from ..syntax import normalize
from ._common import EXIT_OK, EXIT_PROGRAM, gauge_files, report


def register(sub) -> None:
    p = sub.add_parser(
        "fmt",
        help="format .gauge files in the canonical layout",
        description="Rewrite .gauge files in the canonical layout (spacing, one entry per "
        "line, two-space indent, aligned blocks); comments and blank lines are kept.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="files or folders; '-' for stdin")
    p.add_argument(
        "--check",
        action="store_true",
        help="write nothing; list the files that would change and exit 1 if there are any",
    )
    p.set_defaults(handler=run)


def run(args, sources) -> int:
    from ..format import format_text

    status = EXIT_OK
    changed: list[str] = []
    for name in gauge_files(args.files):
        if name == "-":
            raw, label = sys.stdin.read(), "<stdin>"
        else:
            try:
                raw = Path(name).read_bytes().decode("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                print(f"gaugedsl fmt: cannot read {name}: {exc}", file=sys.stderr)
                status = EXIT_PROGRAM
                continue
            label = name
        text = normalize(raw)  # the formatted file has LF line endings and no byte-order mark
        sources.add(label, text)
        try:
            formatted = format_text(text, label)
        except GaugeError as exc:
            report(exc, sources)
            status = EXIT_PROGRAM
            continue
        if name == "-":
            if args.check:
                if formatted != raw:
                    changed.append(label)
            else:
                sys.stdout.write(formatted)
            continue
        if formatted == raw:
            continue
        changed.append(name)
        if not args.check:
            write_atomic(Path(name), formatted)
    if args.check:
        for name in changed:
            print(name)
        if changed:
            noun = "file" if len(changed) == 1 else "files"
            print(f"{len(changed)} {noun} would be reformatted", file=sys.stderr)
            status = EXIT_PROGRAM
    else:
        for name in changed:
            print(f"reformatted {name}", file=sys.stderr)
    return status
