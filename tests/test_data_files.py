"""What `load` accepts (gaugedsl/lowering.py): real numbers of the declared shape, finite. A FIFO or
device, a damaged archive, complex, string or object values and NaN/Inf are E705 on the `load`,
never an internal error, a hang or a silent cast (issue 20 item 5)."""

import os

import numpy as np
import pytest

from gaugedsl.check import check_file
from gaugedsl.diagnostics import GaugeError
from gaugedsl.lowering import Lowered

PROGRAM = 'model m\ndata {{\n  X : R[3] = load("{file}")\n}}\nparam u : R = 1\nloss = u^2 + sum(X)\n'


def lower(tmp_path, file):
    path = tmp_path / "m.gauge"
    path.write_text(PROGRAM.format(file=file))
    return Lowered(check_file(path))


def refused(tmp_path, file):
    with pytest.raises(GaugeError) as e:
        lower(tmp_path, file)
    d = e.value.diagnostics[0]
    assert (d.code, d.span.line, d.span.column) == ("E705", 3, 14)
    return d.message


def test_finite_real_data_is_loaded(tmp_path):
    np.save(tmp_path / "ok.npy", np.array([1, 2, 3], np.int32))
    assert np.array_equal(lower(tmp_path, "ok.npy").data["X"], [1.0, 2.0, 3.0])


@pytest.mark.parametrize(
    "values, says",
    [
        (np.array([1.0, np.nan, 2.0]), "1 value that is NaN or infinite (the first at index [1])"),
        (np.array([1.0, np.inf, -np.inf]), "2 values that are NaN or infinite"),
        (np.array([1 + 1j, 2, 3]), "complex numbers"),
        (np.array(["a", "b", "c"]), "values of type <U1"),
    ],
)
def test_values_that_are_not_finite_real_numbers_are_refused(tmp_path, values, says):
    np.save(tmp_path / "bad.npy", values)
    assert says in refused(tmp_path, "bad.npy")


def test_a_truncated_archive_is_refused(tmp_path):
    np.savez(tmp_path / "full.npz", X=np.ones(3))
    (tmp_path / "cut.npz").write_bytes((tmp_path / "full.npz").read_bytes()[:40])
    assert "cannot read cut.npz" in refused(tmp_path, "cut.npz")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_opening_it(tmp_path):
    os.mkfifo(tmp_path / "pipe.npy")  # opening it would block until a writer came
    assert "not a regular file" in refused(tmp_path, "pipe.npy")


def _forged_npz(path, shape):
    """A `.npz` whose member's header claims `shape` (float64) but holds 24 bytes of data."""
    import io
    import zipfile

    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(member, {"descr": "<f8", "fortran_order": False, "shape": shape})
    member.write(np.ones(3).tobytes())
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("X.npy", member.getvalue())


def test_an_npz_header_is_checked_before_its_data_is_read(tmp_path, monkeypatch):
    # The header claims 10¹² numbers (8 TB): the shape is refused from the header alone.
    _forged_npz(tmp_path / "forged.npz", (10**6, 10**6))
    monkeypatch.setattr(np.lib.npyio.NpzFile, "__getitem__", lambda self, key: pytest.fail("the data was read"))
    with pytest.raises(GaugeError) as e:
        lower(tmp_path, "forged.npz")
    d = e.value.diagnostics[0]
    assert d.code == "E706" and "shape [1000000, 1000000]" in d.message


def test_an_npz_whose_data_is_shorter_than_its_header_is_refused(tmp_path):
    _forged_npz(tmp_path / "short.npz", (3, 4))  # 12 numbers promised, 3 given
    path = tmp_path / "m.gauge"
    path.write_text(PROGRAM.format(file="short.npz").replace("R[3]", "R[3, 4]"))
    with pytest.raises(GaugeError) as e:
        Lowered(check_file(path))
    assert e.value.diagnostics[0].code == "E705" and "cannot read short.npz" in e.value.diagnostics[0].message
