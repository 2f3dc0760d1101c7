"""Seeds are 0 … 2^32 − 1 (a JAX key holds 32 bits): a larger data seed would wrap onto a smaller
one (2^32 was seed 0) and a larger run seed crashed; each is a diagnostic at its span now."""

import pytest

from gaugedsl.check import check_text
from gaugedsl.diagnostics import GaugeError
from gaugedsl.dynamics import Simulation

DATA = "model m\ndata {{\n  X : R[3] = normal(0, 1, seed = {seed})\n}}\nparam u : R = 1\nloss = u^2 + sum(X)\n"
RUN = "model m\nparam u : R = 1\nloss = u^2\nnoise isotropic(T = 0.1)\nrun {{\n  dynamics = sde\n  dt = 0.01\n  steps = 10\n  seed = {seed}\n}}\n"


@pytest.mark.parametrize("seed", [2**32, 2**63])
def test_a_data_seed_out_of_range_is_e318(seed):
    with pytest.raises(GaugeError) as e:
        check_text(DATA.format(seed=seed), "<s>")
    d = e.value.diagnostics[0]
    assert (d.code, d.span.line) == ("E318", 3) and "out of range" in d.message


def test_the_largest_data_seed_is_accepted():
    check_text(DATA.format(seed=2**32 - 1), "<s>")


def test_a_run_seed_out_of_range_is_refused_in_the_block_and_as_an_override():
    with pytest.raises(GaugeError) as e:
        check_text(RUN.format(seed=2**32), "<s>")
    assert e.value.diagnostics[0].code == "E505" and e.value.diagnostics[0].span.line == 9
    model = check_text(RUN.format(seed=1), "<s>")
    with pytest.raises(GaugeError) as e:
        Simulation(model, seed=2**32)
    assert e.value.diagnostics[0].code == "E803" and "seed = 4294967296" in e.value.diagnostics[0].message
