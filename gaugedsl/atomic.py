"""The one way gaugedsl writes a file: all of it or none of it.

The data go to a temporary file in the target's folder (so that the rename never crosses a
filesystem), are flushed to disk, and `os.replace` puts the file in place: a reader, or a run
killed halfway, sees the old file or the new one, never a part of one. A failure removes the
temporary file. A file that is replaced keeps its permissions; a new one gets the usual ones
(0o666 less the umask), not `mkstemp`'s 0o600.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["replacing", "write_bytes", "write_json", "write_npz", "write_text"]


@contextlib.contextmanager
def replacing(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yields a fresh temporary path beside `path`; write it inside the `with`, and on leaving
    it the file is made durable and renamed onto `path`. The temporary name ends in the target's
    suffix, so that writers that choose a format by the name (savefig, np.savez) keep it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the umask applies
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        with contextlib.suppress(OSError):  # keep the permissions of the file we replace
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    with replacing(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """UTF-8, line endings written as given."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], value: Any, **dumps: Any) -> Path:
    """`json.dumps(value, **dumps)` and a final newline; serialized before anything is written."""
    return write_text(path, json.dumps(value, **dumps) + "\n")


def write_npz(path: str | os.PathLike[str], arrays: Mapping[str, Any]) -> Path:
    """An uncompressed `.npz`, serialized in memory before anything is written."""
    import numpy as np  # here: the commands that only write text need not load it

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return write_bytes(path, buf.getvalue())
