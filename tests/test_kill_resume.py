"""Kill and resume (issue 20 items 2 and 7): `gaugedsl run` is SIGKILLed at a random moment, and
in the middle of each of its writes (a checkpoint after its temporary file is complete but
before the rename, results.npz, summary.json); each time `--resume` continues, and the end is
bit-identical to a run that was never interrupted. No kill leaves a complete-looking
results/summary pair from a partial run, and the temporary files of interrupted writes go."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gaugedsl.cli import main

ROOT = Path(__file__).resolve().parents[1]

PROGRAM = """model killed
param u : R[4] = normal(0.7, 0.1)
param v : R[4] = normal(0.7, 0.1)
predictor w = u * v
loss = 0.5 * sum((w - 0.5)^2)
symmetry balance : Scale[4] {
  u -> g * u
  v -> v / g
}
noise isotropic(T = 0.05)  # no law rows: the comparison at the end is quick
run {
  particles = 64
  steps = 3000
  dt = 1e-2
  chunk = 500
  seed = 11
  record every 100: w, loss
}
"""

# Runs the CLI in a child that SIGKILLs itself at the n-th os.replace onto a file of a given
# name: the temporary file is complete, the rename has not happened — the worst moment.
RUNNER = """
import os, signal, sys
target, n = os.environ["KILL_AT_WRITE"].split(":") if os.environ.get("KILL_AT_WRITE") else (None, 0)
seen, replace = [0], os.replace
def replace_or_die(src, dst, **kw):
    if target and os.path.basename(dst) == target:
        seen[0] += 1
        if seen[0] == int(n):
            os.kill(os.getpid(), signal.SIGKILL)
    return replace(src, dst, **kw)
os.replace = replace_or_die
from gaugedsl.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _child(argv, tmp_path, kill_at=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT), GAUGEDSL_XLA_CACHE="1", XDG_CACHE_HOME=str(tmp_path / "cache"))
    env.pop("KILL_AT_WRITE", None)
    if kill_at:
        env["KILL_AT_WRITE"] = kill_at
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER, *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _complete_pair(out: Path) -> bool:
    if not (out / "summary.json").exists():
        return False
    summary = json.loads((out / "summary.json").read_text())
    import hashlib

    return (out / "results.npz").exists() and summary["results_sha256"] == hashlib.sha256(
        (out / "results.npz").read_bytes()
    ).hexdigest()


@pytest.mark.parametrize(
    "writes",
    [
        ("checkpoint.npz:2",),  # CI: inside a checkpoint write, then at a random moment
        pytest.param(("checkpoint.npz:2", "results.npz:1", "summary.json:1"), marks=pytest.mark.slow),
    ],
    ids=["ci", "every-write"],
)
def test_kills_at_random_moments_and_inside_every_write_resume_to_the_same_numbers(writes, tmp_path, capsys):
    program = tmp_path / "killed.gauge"
    program.write_text(PROGRAM)
    assert main(["run", str(program), "-o", str(tmp_path / "whole"), "--no-progress"]) == 0
    capsys.readouterr()

    out = tmp_path / "out"
    argv = ["run", str(program), "-o", str(out), "--no-progress"]
    rng = random.Random(20)
    # inside the second checkpoint write, then at a random moment, then inside the results
    # write (slow variant) and between results.npz and summary.json, each resumed
    plan = [(writes[0], False), (None, True), *((w, True) for w in writes[1:])]
    for kill_at, resume in plan:
        child = _child(argv + (["--resume"] if resume else []), tmp_path, kill_at)
        if kill_at is None:
            time.sleep(rng.uniform(4.0, 9.0))  # import and compile take a few seconds: land in the run
            child.send_signal(signal.SIGKILL)
        _, err = child.communicate(timeout=300)
        assert child.returncode in (-signal.SIGKILL, 0), err
        assert "internal error" not in err and "Traceback" not in err, err
        if kill_at is not None:  # inside a write: never a complete pair (summary.json comes last)
            assert not _complete_pair(out), f"a kill ({kill_at}) left a complete-looking pair"
        if child.returncode == 0 or _complete_pair(out):  # done (a random kill may land after the summary)
            break
    else:
        child = _child(argv + ["--resume"], tmp_path)
        _, err = child.communicate(timeout=300)
        assert child.returncode == 0, err
    assert _complete_pair(out)  # its arrays are the uninterrupted run's (below)
    assert not list(out.glob(".*.tmp*")), list(out.glob(".*"))
    with np.load(tmp_path / "whole" / "results.npz") as a, np.load(out / "results.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
