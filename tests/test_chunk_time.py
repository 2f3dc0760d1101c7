"""SDE chunks are short enough for their time to count every step (docs/dynamics.md, "Chunks").

Diffrax ends a solve at t1 as soon as the next time is within 100 ULPs of t1. The chunk solvers
count time in steps, in the state's dtype, so in float32 a chunk of 2^17 steps or more ended with
one double step and its last record unset (infinite) — found as infinities in a 1.5-million-step
run — and its numbers depended on the chunk length. The plan keeps SDE chunks at 2^16 steps or
fewer in float32; a longer `chunk =` is refused with E804.
"""

import numpy as np
import pytest

import gaugedsl
from gaugedsl.check import check_text
from gaugedsl.diagnostics import GaugeError
from gaugedsl.dynamics import Simulation

MODEL = """model q
param u : R = 0.6
param v : R = 0.7
predictor w = u * v
loss = 0.5 * (w - 0.5)^2
symmetry s : Scale {{ u -> g * u  v -> v / g }}
noise projected(T = 0.05)
run {{
  dynamics = {dynamics}
  particles = 2
  dt = 1e-3
  steps = {steps}
  seed = 0
{chunk}  record every 100: w
}}
"""


@pytest.mark.parametrize("dynamics", ["sde", "quotient"])
def test_a_long_float32_run_gets_chunks_of_at_most_2_16_steps(dynamics):
    model = check_text(MODEL.format(dynamics=dynamics, steps=3_000_000, chunk=""), "<q>")
    assert Simulation(model).plan.chunk <= 2**16
    assert Simulation(model, chunk=200_000).plan.chunk <= 2**16  # the command line's --chunk: clamped


def test_a_longer_chunk_in_the_run_block_is_refused():
    model = check_text(MODEL.format(dynamics="sde", steps=300_000, chunk="  chunk = 150000\n"), "<q>")
    with pytest.raises(GaugeError) as info:
        Simulation(model)
    assert info.value.diagnostics[0].code == "E804" and "65500" in info.value.diagnostics[0].hint


def test_the_last_record_of_a_chunk_at_the_limit_is_set():
    """A chunk of 65,500 steps (the limit rounded to the record interval) ends on its last step."""
    result = gaugedsl.load(MODEL.format(dynamics="sde", steps=65_500, chunk="  chunk = 65500\n")).run()
    assert np.all(np.isfinite(result.records["w"]))
