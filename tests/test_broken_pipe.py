"""A reader that leaves the pipe (`gaugedsl check bad.gauge 2>&1 | head -1`) is not a success: the
command exits 141 (128 + SIGPIPE, as a process killed by it), with no traceback, whatever it was
writing — diagnostics on stderr or a listing on stdout."""

import os
import subprocess
import sys

import pytest

BAD = "model m\nparam u : R = 1\nloss = u^2 + nope\n"
GOOD = "model m\nparam u : R = 1\nloss = u^2\n"


@pytest.mark.parametrize("text, argv", [(BAD, ["check"]), (GOOD, ["check", "--emit", "ir"])])
def test_a_closed_pipe_exits_141(tmp_path, text, argv):
    path = tmp_path / "m.gauge"
    path.write_text(text)
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first byte
    try:
        proc = subprocess.run([sys.executable, "-m", "gaugedsl", *argv, str(path)], stdout=write, stderr=write,
                              timeout=120)  # fmt: skip
    finally:
        os.close(write)
    assert proc.returncode == 141
