"""The one atomic writer: all of a file or none of it, no temporary file left behind."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from gaugedsl import atomic


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_each_writer_round_trips_and_leaves_only_the_file(tmp_path):
    atomic.write_text(tmp_path / "a.txt", "∇ one\r\ntwo\n")
    atomic.write_bytes(tmp_path / "b.bin", b"\x00\xff")
    atomic.write_json(tmp_path / "c.json", {"x": [1, 2]}, indent=2)
    atomic.write_npz(tmp_path / "d.npz", {"theta": np.arange(3.0)})
    assert (tmp_path / "a.txt").read_bytes() == "∇ one\r\ntwo\n".encode()  # no newline translation
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\xff"
    assert json.loads((tmp_path / "c.json").read_text()) == {"x": [1, 2]}
    assert (tmp_path / "c.json").read_text().endswith("}\n")
    with np.load(tmp_path / "d.npz") as z:
        assert z["theta"].tolist() == [0.0, 1.0, 2.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.bin", "c.json", "d.npz"]


def test_a_new_file_gets_the_usual_permissions_and_a_replaced_one_keeps_its_own(tmp_path):
    atomic.write_text(tmp_path / "new.txt", "x")
    assert (tmp_path / "new.txt").stat().st_mode & 0o777 == 0o666 & ~_umask()
    old = tmp_path / "old.txt"
    old.write_text("old")
    old.chmod(0o640)
    atomic.write_text(old, "new")
    assert old.read_text() == "new" and old.stat().st_mode & 0o777 == 0o640


def test_a_failed_rename_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "a.json"
    target.write_text("old\n")

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        atomic.write_json(target, {"new": 1})
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_a_writer_that_fails_halfway_leaves_the_old_file(tmp_path):
    target = tmp_path / "fig.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic.replacing(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".png"  # savefig picks the format by it
        tmp.write_bytes(b"half")
        raise RuntimeError("the plot failed")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["fig.png"]


def test_an_unserializable_value_writes_nothing(tmp_path):
    with pytest.raises(TypeError):
        atomic.write_json(tmp_path / "x.json", {"f": object()})
    assert list(tmp_path.iterdir()) == []
