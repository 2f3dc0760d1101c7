"""Line endings and a byte-order mark (gaugedsl/syntax/source.py): a CR-only, CRLF or BOM file is
its LF twin — the same checked model, the same numbers — and `fmt` writes it with LF."""

import pytest

from gaugedsl.check import check_file, check_text
from gaugedsl.cli import main

LF = """model m
# a comment that must end at its line
param u : R = 1.2  # so must this one
param v : R = 0.3
predictor w = u * v
loss = 0.5 * (w - 0.5)^2
symmetry balance : Scale { u -> g * u  v -> v / g }
noise projected(T = 0.1)
"""

VARIANTS = {
    "crlf": LF.replace("\n", "\r\n"),
    "cr": LF.replace("\n", "\r"),
    "bom": "\ufeff" + LF,
    "bom+crlf": "\ufeff" + LF.replace("\n", "\r\n"),
}


@pytest.mark.parametrize("name", VARIANTS)
def test_a_file_with_other_line_endings_or_a_bom_is_its_lf_twin(tmp_path, name):
    lf, other = tmp_path / "lf.gauge", tmp_path / f"{name}.gauge"
    lf.write_bytes(LF.encode())
    other.write_bytes(VARIANTS[name].encode())
    a, b = check_file(lf), check_file(other)
    assert [p.name for p in b.params] == ["u", "v"]  # the comments ended at their lines
    assert b.source_hash == a.source_hash  # what the numbers are keyed on
    assert check_text(VARIANTS[name], "<s>").source_hash == a.source_hash


def test_fmt_writes_lf_and_check_reports_the_change(tmp_path, capsys):
    path = tmp_path / "cr.gauge"
    path.write_bytes(VARIANTS["bom+crlf"].encode())
    assert main(["fmt", "--check", str(path)]) == 1
    assert main(["fmt", str(path)]) == 0
    data = path.read_bytes()
    assert b"\r" not in data and not data.startswith(b"\xef\xbb\xbf")
    assert main(["fmt", "--check", str(path)]) == 0
