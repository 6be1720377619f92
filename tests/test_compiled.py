"""The compiled core is the build of the sources as they are, or not used at all.

`make test` compiles humidity/core with mypyc and runs the suite on it, then
runs the tests without a broker again with HUMIDITY_CORE=interpreted.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import humidity.core as core
from humidity.core import history
from tests import helpers

INTERPRETED = os.environ.get(core.CHOICE) == "interpreted"
PROBE = "import humidity.core as c, humidity.core.history as h; print(c.COMPILED, Path(h.__file__).suffix)"


def test_the_suite_runs_on_the_build_it_asked_for():
    if INTERPRETED:
        assert not core.COMPILED and history.__file__.endswith(".py")
    else:
        assert core.COMPILED, "humidity/core is not compiled for its current sources: run `make compile`"
        assert history.__file__.endswith(".so")


def _probe(root: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from pathlib import Path; " + PROBE], cwd=root,
                          capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})})


@pytest.mark.skipif(INTERPRETED or not core.COMPILED, reason="needs the compiled build (make compile)")
def test_a_source_edited_after_the_build_runs_interpreted(tmp_path):
    copy = tmp_path / "tree"
    shutil.copytree(helpers.ROOT / "humidity", copy / "humidity", ignore=shutil.ignore_patterns("__pycache__"))
    for lib in helpers.ROOT.glob(f"{core.GROUP}__mypyc*.so"):
        shutil.copy(lib, copy / lib.name)
    clean = {"PYTHONPATH": str(copy), core.CHOICE: "compiled"}

    as_built = _probe(copy, clean)
    assert as_built.stdout.split() == ["True", ".so"], as_built.stderr

    assert _probe(copy, {**clean, core.CHOICE: "interpreted"}).stdout.split() == ["False", ".py"]

    edited = copy / "humidity" / "core" / "aggregate.py"
    edited.write_text(edited.read_text() + "\n# edited after the build\n")
    stale = _probe(copy, clean)
    assert stale.stdout.split() == ["False", ".py"]
    assert "does not match the sources" in stale.stderr
