"""Ensembles sharded over several devices: the same numbers as on one device, and the
command line asks XLA for one CPU device per core."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gaugedsl.dynamics.devices import request_host_devices

ROOT = Path(__file__).resolve().parents[1]

# 5 particles over 2 devices: the particle axis is padded to 6 and the padding dropped.
SCRIPT = """
import json, sys
import jax, numpy as np
from gaugedsl.check import check_file
from gaugedsl.dynamics import Simulation
sim = Simulation(check_file(sys.argv[1]), particles=5, steps=300, chunk=100)
res = sim.run()
np.savez(sys.argv[2], theta=res.theta, **res.records)
print(json.dumps({"devices": len(jax.devices()), "sharded_over": sim.sharding.count, "padded": sim.sharding.padded}))
"""


def _run(program: Path, out: Path, devices: int) -> dict:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(program), str(out)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "example", ["diagonal_net.gauge", pytest.param("e1_relu.gauge", marks=pytest.mark.slow)]
)  # CI: the SDE case (suite time); the streamed SGD map under --runslow
def test_sharded_ensemble_gives_the_same_numbers_as_one_device(tmp_path, example):
    """SDE with projected noise (diagonal_net) and the discrete SGD map with streamed data
    (e1_relu): the trajectories agree bit for bit, since no particle's dynamics depends on
    where its neighbours run. Records agree to float32 rounding: XLA may vectorize a
    record's reduction (e1's `norm(W, axis = 1)`) differently for 3 particles per device than
    for 5 on one, which moves the last bit (seen: 1 ulp, relative 1.2e-7; its log10 near 0
    differs by 1e-7 absolute), so records are compared to 1e-6 relative and absolute."""
    program = ROOT / "examples" / example
    one = _run(program, tmp_path / "one.npz", 1)
    two = _run(program, tmp_path / "two.npz", 2)
    assert one == {"devices": 1, "sharded_over": 1, "padded": 5}
    assert two == {"devices": 2, "sharded_over": 2, "padded": 6}
    a, b = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    assert sorted(a.files) == sorted(b.files)
    np.testing.assert_array_equal(a["theta"], b["theta"])
    for name in a.files:
        assert a[name].shape == b[name].shape, name
        np.testing.assert_allclose(a[name], b[name], rtol=1e-6, atol=1e-6, err_msg=name)


def test_request_host_devices_respects_existing_settings(monkeypatch):
    monkeypatch.delenv("PJRT_NPROC", raising=False)
    monkeypatch.delenv("NPROC", raising=False)
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=3")
    request_host_devices()
    assert os.environ["XLA_FLAGS"] == "--xla_force_host_platform_device_count=3"
    assert os.environ["PJRT_NPROC"] == "6"  # the pool for the devices asked for
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=false")
    monkeypatch.setenv("GAUGEDSL_CPU_DEVICES", "4")
    monkeypatch.setenv("PJRT_NPROC", "5")
    request_host_devices()
    assert os.environ["XLA_FLAGS"] == "--xla_cpu_enable_fast_math=false --xla_force_host_platform_device_count=4"
    assert os.environ["PJRT_NPROC"] == "5"  # the user's pool size stands
    monkeypatch.setenv("XLA_FLAGS", "")
    monkeypatch.setenv("GAUGEDSL_CPU_DEVICES", "1")
    monkeypatch.delenv("PJRT_NPROC")
    request_host_devices()
    assert os.environ["XLA_FLAGS"] == ""
    assert "PJRT_NPROC" not in os.environ  # one device: JAX's own pool


def test_equinox_checks_are_nans_unless_the_user_chose(monkeypatch):
    """So that compiled programs have no host callbacks, which XLA does not cache."""
    from gaugedsl._host import request_cacheable_programs

    monkeypatch.delenv("EQX_ON_ERROR", raising=False)
    request_cacheable_programs()
    assert os.environ["EQX_ON_ERROR"] == "nan"
    monkeypatch.setenv("EQX_ON_ERROR", "breakpoint")
    request_cacheable_programs()
    assert os.environ["EQX_ON_ERROR"] == "breakpoint"


# E3 records svdvals of 20 × 20 matrices; with 4 particles per device on 2 devices and XLA's
# pool of one thread per core, every pool thread blocked in jaxlib's batched SVD, waiting for
# tasks queued on that same pool, and the run hung (every time, on the 2-core machine).
def test_batched_linear_algebra_on_every_core_does_not_hang(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "PJRT_NPROC", "NPROC")}
    env.update(JAX_PLATFORMS="cpu", GAUGEDSL_CPU_DEVICES="2")
    program = ROOT / "examples" / "e3_matrix_completion.gauge"
    try:
        done = subprocess.run(
            [sys.executable, "-m", "gaugedsl", "run", str(program), "--particles", "8", "--steps", "2000", "--no-progress", "-o", str(tmp_path / "run")],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail("gaugedsl run hung in a batched LAPACK call (the intra-op pool was starved)")
    assert done.returncode == 0, done.stderr
    assert "on 2 × cpu" in done.stdout
    energy = np.load(tmp_path / "run" / "results.npz")["energy"]
    assert energy.shape == (3, 8, 20) and np.all(np.isfinite(energy))


def test_gaugedsl_run_uses_every_core(tmp_path):
    """The command itself, started fresh: it shards the ensemble over one CPU device per core
    and says so in summary.json; and it keeps its compiled programs in the user's cache
    folder, so that a repeated run compiles nothing at all (not even the small programs that
    building a simulation compiles op by op)."""
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "GAUGEDSL_XLA_CACHE")}
    env.update(JAX_PLATFORMS="cpu", GAUGEDSL_CPU_DEVICES="2", XDG_CACHE_HOME=str(tmp_path / "cache"))
    program = ROOT / "examples" / "diagonal_net.gauge"
    out = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "gaugedsl",
        "run",
        str(program),
        "--particles",
        "10",
        "--steps",
        "200",
        "--no-progress",
        "-o",
        str(out),
        "--log-compiles",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "on 2 × cpu" in done.stdout
    assert json.loads((out / "summary.json").read_text())["devices"] == "2 × cpu"
    assert "Finished XLA compilation of jit(chunk)" in done.stderr
    assert any((tmp_path / "cache" / "gaugedsl" / "xla").iterdir())
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert any("'jit_chunk'" in line for line in _read_back(again.stderr))


@pytest.mark.slow  # a cache property, not a result; CI: test_gaugedsl_run_uses_every_core reads its cache back
def test_gaugedsl_bias_asked_again_compiles_nothing(tmp_path):
    """`bias` compiles dozens of small programs for the geometry; the second time it reads
    them all back from the user's cache folder, and says the same."""
    env = {k: v for k, v in os.environ.items() if k != "GAUGEDSL_XLA_CACHE"}
    env.update(JAX_PLATFORMS="cpu", JAX_LOG_COMPILES="1", XDG_CACHE_HOME=str(tmp_path / "cache"))
    command = [sys.executable, "-m", "gaugedsl", "bias", str(ROOT / "examples" / "diagonal_net.gauge")]
    first, again = (subprocess.run(command, env=env, capture_output=True, text=True, timeout=300) for _ in range(2))
    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    assert "Finished XLA compilation" in first.stderr
    assert again.stdout == first.stdout
    _read_back(again.stderr)


def _read_back(log: str) -> list[str]:
    """The cache hits of a JAX compile log (`jax_log_compiles`), asserting that every program
    it compiled was one: read back, not compiled."""
    lines = log.splitlines()
    programs = [line.split(" with ")[0] for line in lines if line.startswith("Compiling jit(")]
    hits = [line for line in lines if line.startswith("Persistent compilation cache hit")]
    assert len(hits) == len(programs) > 10, programs
    return hits
