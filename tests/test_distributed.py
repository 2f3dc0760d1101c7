"""Many processes on JAX's own runtime (gaugedsl/dynamics/distributed.py): two local CPU
processes on the loopback address, one device each, give results bit-identical to one process
with two devices for the same seed (the same sharded program, each particle's arithmetic
unchanged); only process 0 writes."""

import os
import socket
import subprocess
import sys

import numpy as np

from gaugedsl.cli import main

PROGRAM = """model two_processes
param u : R = sqrt(0.5)
param v : R = sqrt(0.5)
predictor w = u * v
loss = 0.5 * (w - 0.5)^2
symmetry balance : Scale {
  u -> g * u
  v -> v / g
}
noise projected(T = 0.1)
run {
  particles = 30
  steps = 200
  dt = 1e-2
  record every 50: w, charge(balance)
}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gaugedsl(args, devices: int, **popen):
    env = {**os.environ, "GAUGEDSL_CPU_DEVICES": str(devices), "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)  # the command asks for its own device count
    return subprocess.Popen([sys.executable, "-m", "gaugedsl", *args], env=env, **popen)


def test_two_processes_give_the_numbers_of_one(tmp_path):
    program = tmp_path / "m.gauge"
    program.write_text(PROGRAM)
    common = ["run", str(program), "--sweep", "seed=0..1"]
    port = _free_port()
    hand = ["--coordinator", f"127.0.0.1:{port}", "--num-processes", "2"]
    out = subprocess.DEVNULL
    two = [
        _gaugedsl(
            [*common, "-o", str(tmp_path / ("two" if i == 0 else "none")), *hand, "--process-id", str(i)],
            1,
            stdout=out,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for i in (0, 1)
    ]
    try:
        errs = [p.communicate(timeout=240)[1].decode() for p in two]
    finally:
        for p in two:
            p.kill()
    assert [p.returncode for p in two] == [0, 0], errs
    assert not (tmp_path / "none").exists()  # process 1 writes nothing
    one = _gaugedsl([*common, "-o", str(tmp_path / "one")], 2, stdout=out, stderr=subprocess.PIPE)
    assert one.wait(timeout=240) == 0
    with np.load(tmp_path / "one" / "results.npz") as a, np.load(tmp_path / "two" / "results.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_the_process_flags_go_together(tmp_path, capsys):
    program = tmp_path / "m.gauge"
    program.write_text(PROGRAM)
    assert main(["run", str(program), "--coordinator", "127.0.0.1:1", "--num-processes", "2"]) == 2
    assert "go together" in capsys.readouterr().err
    assert main(["run", str(program), "--coordinator", "127.0.0.1:1", "--num-processes", "2", "--process-id", "2"]) == 2
    assert "is not below --num-processes 2" in capsys.readouterr().err
