"""Checkpoints prove themselves: `gaugedsl run --resume` continues only the run that wrote the
checkpoint, from a checkpoint that is whole; anything else is exit 2 naming what differs,
never exit 3 and never a spliced result. The results/summary pair cannot look complete after
a kill between the two writes."""

import hashlib
import json
import shutil

import numpy as np
import pytest

from gaugedsl.cli import main
from gaugedsl.report.checkpoint import array_digest

PROGRAM = """model ckpt
data { x : R[8] = load("x.npy") }
param u : R[8] = normal(0.5, 0.1)
param v : R[8] = normal(0.5, 0.1)
predictor w = u * v
loss = 0.5 * sum((w - x)^2)
symmetry balance : Scale[8] {
  u -> g * u
  v -> v / g
}
noise isotropic(T = 0.05)
run {
  particles = 16
  steps = 300
  dt = 1e-2
  chunk = 100
  seed = 1
  record every 50: w, loss
}
"""


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """A program, its data, and the checkpoint of a run stopped after one chunk of three."""
    root = tmp_path_factory.mktemp("ckpt")
    (root / "m.gauge").write_text(PROGRAM)
    np.save(root / "x.npy", np.linspace(0.1, 0.8, 8).astype(np.float32))
    out = root / "out"
    assert main(["run", str(root / "m.gauge"), "-o", str(out), "--stop-after-chunks", "1"]) == 0
    assert (out / "checkpoint.npz").exists()
    return root


def _copy(interrupted, tmp_path):
    """A fresh copy of the program, data and checkpoint (so that each test may damage its own)."""
    shutil.copytree(interrupted, tmp_path, dirs_exist_ok=True)
    return tmp_path / "m.gauge", tmp_path / "out"


def _resume(program, out, capsys, *extra):
    code = main(["run", str(program), "-o", str(out), "--resume", *extra])
    return code, capsys.readouterr().err


def _forge(path, change):
    """Rewrites the checkpoint with `change(arrays)` applied and a digest that matches it, as an
    editor who knows the format would: only the structural checks can catch it."""
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("meta")))
    change(arrays)
    meta["digest"] = array_digest(arrays)
    np.savez(path, **arrays, meta=np.asarray(json.dumps(meta)))


def test_a_resume_equals_the_uninterrupted_run_and_the_summary_names_its_results(interrupted, tmp_path, capsys):
    program, out = _copy(interrupted, tmp_path)
    assert main(["run", str(program), "-o", str(tmp_path / "whole")]) == 0
    code, err = _resume(program, out, capsys)
    assert code == 0 and "resuming ckpt at step 100 of 300" in err
    with np.load(tmp_path / "whole" / "results.npz") as a, np.load(out / "results.npz") as b:
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["results_sha256"] == hashlib.sha256((out / "results.npz").read_bytes()).hexdigest()
    assert not (out / "checkpoint.npz").exists()


def test_a_relative_path_resumes_what_an_absolute_one_started(interrupted, tmp_path, capsys, monkeypatch):
    program, out = _copy(interrupted, tmp_path)
    monkeypatch.chdir(tmp_path)
    code, err = _resume("m.gauge", "out", capsys)
    assert code == 0, err


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: p.write_bytes(b"not a zip file at all"), "cannot be read"),
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "cannot be read"),
        (lambda p: p.write_bytes(b""), "cannot be read"),
    ],
    ids=["garbage", "truncated", "empty"],
)
def test_an_unreadable_checkpoint_is_refused(interrupted, tmp_path, capsys, damage, message):
    program, out = _copy(interrupted, tmp_path)
    damage(out / "checkpoint.npz")
    code, err = _resume(program, out, capsys)
    assert code == 2 and message in err and "Traceback" not in err


def test_a_checkpoint_of_an_older_gaugedsl_says_so(interrupted, tmp_path, capsys):
    program, out = _copy(interrupted, tmp_path)
    path = out / "checkpoint.npz"
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["meta"] = np.asarray(json.dumps({"program_hash": "…", "plan": {}, "numbers": {}}))  # the old layout
    np.savez(path, **arrays)
    code, err = _resume(program, out, capsys)
    assert code == 2 and "written by an older gaugedsl" in err


def test_a_flipped_bit_is_caught_by_the_digest(interrupted, tmp_path, capsys):
    program, out = _copy(interrupted, tmp_path)
    path = out / "checkpoint.npz"
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["theta"] = arrays["theta"].copy()
    arrays["theta"].view(np.uint32)[3, 2] ^= 1  # one bit of one float
    np.savez(path, **arrays)
    code, err = _resume(program, out, capsys)
    assert code == 2 and "damaged or was edited" in err


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.update(step=np.asarray(10**9)), "step 1000000000 lies outside"),
        (lambda a: a.update(step=np.asarray(100.0)), "not a whole number"),
        (
            lambda a: a.update({"record:w": a["record:w"][:2]}),
            "'record:w' is float32[2, 16, 8], this run needs float32[3, 16, 8]",
        ),
        (lambda a: a.update(theta=a["theta"].astype(np.float64)), "'theta' is float64"),
        (lambda a: a.update(keys=a["keys"][:5]), "'keys' is uint32[5"),
        (lambda a: a.pop("diverged_at"), "has no 'diverged_at'"),
        (lambda a: a.update(diverged_at=np.full(16, 5000)), "divergence step lies outside"),
        (lambda a: a.update({"record:extra": np.zeros(3)}), "does not record: record:extra"),
    ],
    ids=["huge-step", "float-step", "short-records", "dtype", "keys", "missing", "diverged", "extra"],
)
def test_an_edited_checkpoint_with_a_matching_digest_is_refused(interrupted, tmp_path, capsys, change, message):
    program, out = _copy(interrupted, tmp_path)
    _forge(out / "checkpoint.npz", change)
    code, err = _resume(program, out, capsys)
    assert code == 2 and message in err, err
    assert not (out / "results.npz").exists()


@pytest.mark.parametrize(
    "edit, what",
    [
        (lambda root: np.save(root / "x.npy", np.linspace(0.2, 0.9, 8).astype(np.float32)), "data files"),
        (lambda root: (root / "m.gauge").write_text(PROGRAM.replace("loss = 0.5 *", "loss = 0.25 *")), "program text"),
    ],
    ids=["data", "program"],
)
def test_a_checkpoint_of_another_run_is_refused(interrupted, tmp_path, capsys, edit, what):
    program, out = _copy(interrupted, tmp_path)
    edit(tmp_path)
    code, err = _resume(program, out, capsys)
    assert code == 2 and f"its {what} differ" in err, err


def test_other_settings_are_refused_by_name(interrupted, tmp_path, capsys):
    program, out = _copy(interrupted, tmp_path)
    code, err = _resume(program, out, capsys, "--set", "T=0.07")
    assert code == 2 and "its numeric settings differ" in err
    code, err = _resume(program, out, capsys, "--particles", "17")
    assert code == 2 and "its plan (" in err


def test_a_new_run_clears_interrupted_writes_and_stale_results(interrupted, tmp_path, capsys):
    program, out = _copy(interrupted, tmp_path)
    (out / "results.npz").write_bytes(b"an old run's results")
    (out / "summary.json").write_text("{}")
    leftover = out / ".checkpoint.npz.0badc0de.tmp.npz"
    leftover.write_bytes(b"half a write")
    assert main(["run", str(program), "-o", str(out), "--stop-after-chunks", "1"]) == 0
    capsys.readouterr()
    assert not leftover.exists()
    assert not (out / "results.npz").exists() and not (out / "summary.json").exists()
    assert (out / "checkpoint.npz").exists()


def test_a_kill_between_results_and_summary_leaves_no_complete_pair(interrupted, tmp_path, capsys, monkeypatch):
    from gaugedsl.report import results

    program, out = _copy(interrupted, tmp_path)
    assert main(["run", str(program), "-o", str(out)]) == 0  # a complete pair from an earlier run
    capsys.readouterr()

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(results, "write_json", killed)
    assert main(["run", str(program), "-o", str(out), "--set", "T=0.04"]) == 130
    assert (out / "results.npz").exists() and not (out / "summary.json").exists()
