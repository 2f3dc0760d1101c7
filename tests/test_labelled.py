"""Labelled results (report/labelled.py): `RunResult.to_xarray()`, `gaugedsl run --format netcdf`,
the table as a DataFrame and as HTML, the law rows' effective sample size, and the progress bar."""

import io
import json

import numpy as np
import pytest

import gaugedsl
from gaugedsl.cli import main
from gaugedsl.report.law_rows import _effective_sample_size
from gaugedsl.report.progress import Progress, in_notebook

xr = pytest.importorskip("xarray")
pytest.importorskip("h5netcdf")

PROGRAM = """model scalar_labelled
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
  particles = 64
  steps = 200
  dt = 1e-2
  seed = 5
  record every 25: w, charge(balance)
  record every 100: loss
}
"""


@pytest.fixture
def program(tmp_path):
    path = tmp_path / "scalar.gauge"
    path.write_text(PROGRAM)
    return path


def test_to_xarray_labels_every_record_with_its_steps_and_times(program):
    r = gaugedsl.load(program).run(progress=False)
    ds = r.to_xarray()
    assert ds["w"].dims == ("record", "particle")
    assert ds["charge_balance"].dims == ("record", "particle", "charge_balance_0")
    np.testing.assert_array_equal(ds["w"].values, r.records["w"])
    np.testing.assert_array_equal(ds["step"].values, np.arange(0, 201, 25))
    np.testing.assert_allclose(ds["time"].values, np.arange(0, 201, 25) * 1e-2)
    # a second record interval gets its own record dim and coords
    assert ds["loss"].dims == ("loss.record", "particle")
    np.testing.assert_array_equal(ds["loss.step"].values, [0, 100, 200])
    np.testing.assert_array_equal(ds["theta_final"].values, r.result.theta)
    assert ds["healthy"].dtype == bool and ds.sizes["particle"] == 64
    assert ds.attrs["program_hash"] == r.model.source_hash and ds.attrs["seed"] == 5
    assert json.loads(ds.attrs["numbers"]) == {"dt": 0.01, "T": 0.1}
    assert json.loads(ds.attrs["plan"])["particles"] == 64


def test_run_format_netcdf_writes_a_file_that_reads_back_equal(program, tmp_path):
    out = tmp_path / "out"
    assert main(["run", str(program), "-o", str(out), "--format", "netcdf", "--no-progress"]) == 0
    assert (out / "results.nc").is_file() and not (out / "results.npz").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert "netcdf_sha256" in summary and "results_sha256" not in summary
    with xr.open_dataset(out / "results.nc", engine="h5netcdf") as on_disk:
        # the same seed through the API: the same labelled arrays and attrs
        xr.testing.assert_identical(on_disk.load(), gaugedsl.load(program).run(progress=False).to_xarray())


def test_run_format_both_writes_npz_and_netcdf_with_the_same_numbers(program, tmp_path):
    out = tmp_path / "out"
    assert main(["run", str(program), "-o", str(out), "--format", "both", "--no-progress"]) == 0
    with np.load(out / "results.npz") as z, xr.open_dataset(out / "results.nc", engine="h5netcdf") as ds:
        np.testing.assert_array_equal(z["w"], ds["w"].values)
        np.testing.assert_array_equal(z["diverged_at"], ds["diverged_at"].values)


def test_a_sweep_gets_one_dim_per_setting_in_the_file_and_in_the_api(program, tmp_path):
    out = tmp_path / "out"
    argv = ["run", str(program), "-o", str(out), "--format", "netcdf", "--no-progress"]
    assert main(argv + ["--sweep", "T=0.05,0.1", "--sweep", "seed=1..3"]) == 0
    with xr.open_dataset(out / "results.nc", engine="h5netcdf") as ds:
        assert ds["w"].dims == ("T", "seed", "record", "particle")
        np.testing.assert_array_equal(ds["T"].values, [0.05, 0.1])
        np.testing.assert_array_equal(ds["seed"].values, [1, 2, 3])
        sweep = gaugedsl.load(program).run(sweep={"T": [0.05, 0.1], "seed": [1, 2, 3]}, progress=False)
        api = sweep.to_xarray()
        assert api["w"].dims == ds["w"].dims
        np.testing.assert_array_equal(api["w"].values, ds["w"].values)
        # one swept setting: its dim alone
        single = gaugedsl.load(program).run(sweep={"T": [0.05, 0.1]}, progress=False).to_xarray()
        assert single["w"].dims == ("T", "record", "particle")
        # a point is the lone run of its settings
        lone = gaugedsl.load(program).run(T=0.1, seed=2, progress=False)
        np.testing.assert_array_equal(ds["w"].sel(T=0.1, seed=2).values, lone.records["w"])


def test_netcdf_without_xarray_is_a_usage_error_that_says_how_to_install(program, tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "xarray", None)  # `import xarray` raises ImportError
    assert main(["run", str(program), "-o", str(tmp_path / "out"), "--format", "netcdf"]) == 2
    err = capsys.readouterr().err
    assert "pip install" in err and "[xarray]" in err and "Traceback" not in err


def test_the_table_as_a_dataframe_and_as_html(program):
    r = gaugedsl.load(program).run(progress=False)
    frame = r.to_dataframe()
    assert len(frame) == len(r.table)
    assert list(frame["verdict"]) == [row.verdict for row in r.table]
    page = r._repr_html_()
    assert page.startswith("<table>") and page.count("<tr>") == len(r.table) + 1
    assert "agrees" in page and "verdicts:" in page


def test_effective_sample_size_flags_too_few_effective_draws():
    rng = np.random.default_rng(0)
    # independent draws: about one effective draw per record and particle, no flag
    ess, flag = _effective_sample_size(rng.normal(size=(100, 64, 3)))
    assert 3000 < ess < 10000 and flag == ""
    # particles settled at their own levels (branches that never mix) count about once each:
    # 64 particles are fewer than the 400 effective draws a reliable mean needs, 512 are not
    ess, flag = _effective_sample_size(5 * rng.normal(size=(1, 64, 3)) + rng.normal(size=(100, 64, 3)))
    assert 64 <= ess < 100 and "ESS" in flag and "< 400" in flag
    ess, flag = _effective_sample_size(5 * rng.normal(size=(1, 512, 3)) + rng.normal(size=(100, 512, 3)))
    assert ess > 400 and flag == ""
    # a constant coordinate has no ESS; the others decide
    mixed = np.concatenate([rng.normal(size=(100, 64, 1)), np.zeros((100, 64, 1))], axis=-1)
    assert _effective_sample_size(mixed)[1] == ""


def test_progress_bar_counts_steps_and_is_off_where_nobody_sees_it():
    shown = io.StringIO()
    bar = Progress(10, 4, enabled=True, delay=0.0, stream=shown)
    for step in (5, 10):
        bar.update(step)
    bar.close()
    assert "step 10/10" in shown.getvalue() and "particle-steps/s" in shown.getvalue()
    hidden = io.StringIO()  # not a terminal, not a notebook: off by default
    bar = Progress(10, 4, delay=0.0, stream=hidden)
    bar.update(10)
    bar.close()
    assert hidden.getvalue() == "" and not in_notebook()
