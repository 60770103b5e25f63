"""CI run of the coverage-guided fuzz target (fuzz_codec.py) within a short budget, and a
replay of every input it ever crashed on (regressions/)."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzz_codec import fuzz_one, run, seeds  # noqa: E402

REGRESSIONS = sorted((Path(__file__).resolve().parent / "regressions").glob("*.bin"))
BUDGET = float(os.environ.get("FUZZ_SECONDS", "20"))


@pytest.mark.parametrize("path", REGRESSIONS, ids=[p.stem for p in REGRESSIONS])
def test_inputs_that_once_crashed_are_handled(path):
    fuzz_one(path.read_bytes())


def test_seeds_cover_every_version_and_pass():
    for data in seeds():
        fuzz_one(data)
    assert {data[0] for data in seeds()} == {0, 1, 2}


def test_fuzzing_within_the_ci_budget_finds_no_crash(tmp_path):
    result = run(BUDGET, crashes=tmp_path)
    assert result["runs"] > 100 and result["corpus"] > len(seeds())  # it explored, guided by coverage
    assert not result["crashes"], "\n".join(f"{data.hex()}\n{trace}" for data, trace in result["crashes"][:3])
