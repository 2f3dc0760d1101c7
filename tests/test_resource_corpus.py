"""The resource corpus (tests/programs/resource): every case a hostile user found that used to
abort, hang, crash or swell (issue 20), kept as a program whose first line says which command
must refuse it and with which code: `# expect: COMMAND CODE`. Each must end in that diagnostic,
with a position, exit 1, never an internal error (3) or an abort (134), and without lowering
anything where the budget refuses it. Cases that cannot live in git (a FIFO, a forged .npz
header, CR-only and BOM files) are made by the test."""

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from gaugedsl.cli import main

CORPUS = Path(__file__).parent / "programs" / "resource"
CASES = sorted(CORPUS.glob("*.gauge"))
_EXPECT = re.compile(r"^# expect: (\w+) ([EW]\d{3})\n")


def _expectation(path: Path) -> tuple[str, str]:
    m = _EXPECT.match(path.read_text(encoding="utf-8"))
    assert m, f"{path.name} has no '# expect: COMMAND CODE' first line"
    return m[1], m[2]


def test_the_corpus_covers_the_cases_of_the_issue():
    codes = {_expectation(p)[1] for p in CASES}
    assert {"E707", "E814", "E505", "E506", "E013", "E106", "E319", "E705", "E806"} <= codes
    assert len(CASES) >= 25


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_each_case_is_refused_with_its_diagnostic(path, tmp_path, capsys, monkeypatch):
    command, code = _expectation(path)
    argv = [command, str(path)] + (["-o", str(tmp_path / "out"), "--no-progress"] if command == "run" else [])
    if code in ("E707", "E814"):  # refused from the IR and the plan: nothing may be lowered first
        from gaugedsl import lowering

        monkeypatch.setattr(lowering.Lowered, "__init__", lambda *a, **k: pytest.fail("lowered before the refusal"))
    exit_code = main(argv)
    err = capsys.readouterr().err
    assert exit_code == 1, err
    assert re.search(rf"^\S+:\d+:\d+: error\[{code}\]", err, re.M), err
    assert "internal error" not in err and "Traceback" not in err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_in_place_of_a_program_an_import_or_data_never_hangs(tmp_path, capsys):
    shutil.copy(CORPUS / "data_nan.gauge", tmp_path / "m.gauge")
    os.mkfifo(tmp_path / "nan.npy")
    assert main(["bias", str(tmp_path / "m.gauge")]) == 1
    assert "error[E705]" in capsys.readouterr().err
    os.mkfifo(tmp_path / "lib.gauge")
    (tmp_path / "imports.gauge").write_text("model imports\n\nimport lib\n\nparam u : R[3]\nloss = sum(u^2)\n")
    assert main(["check", str(tmp_path / "imports.gauge")]) == 1
    assert "error[E100]" in capsys.readouterr().err


@pytest.mark.parametrize(
    "encode", [lambda t: t.replace("\n", "\r"), lambda t: "\ufeff" + t.replace("\n", "\r\n")], ids=["cr", "bom-crlf"]
)
def test_other_line_endings_check_as_their_lf_twin(encode, tmp_path, capsys):
    text = (CORPUS / "let_division_by_zero.gauge").read_text(encoding="utf-8")
    (tmp_path / "lf.gauge").write_text(text, newline="")
    (tmp_path / "other.gauge").write_bytes(encode(text).encode("utf-8"))
    main(["check", str(tmp_path / "lf.gauge")])
    lf = capsys.readouterr().err
    main(["check", str(tmp_path / "other.gauge")])
    assert capsys.readouterr().err == lf.replace("lf.gauge", "other.gauge")


def test_a_forged_npz_header_is_refused_from_the_header(tmp_path, capsys):
    import io
    import zipfile

    shutil.copy(CORPUS / "data_nan.gauge", tmp_path / "m.gauge")
    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(member, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)})
    with zipfile.ZipFile(tmp_path / "forged.npz", "w") as z:
        z.writestr("X.npy", member.getvalue())
    (tmp_path / "m.gauge").write_text((tmp_path / "m.gauge").read_text().replace("nan.npy", "forged.npz"))
    assert main(["bias", str(tmp_path / "m.gauge")]) == 1
    assert "error[E706]" in capsys.readouterr().err
