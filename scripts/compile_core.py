"""Compile the pure core (every module of humidity/core) with mypyc, in place.

    make compile        (run by `make run`, `make test`, `make soak`, `make bench`)

The same sources stay the one implementation: the extension modules are
built next to them, and `humidity/core/__init__.py` imports them only while
`compiled.json` (written last, with each source's SHA-256) matches the
sources. Otherwise the modules run interpreted. mypyc type-checks first, so
a type error in the core stops the build with mypy's message.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from humidity.core import GROUP, STAMP, compiled_sources, source_hashes  # noqa: E402

SETUP = """
from setuptools import setup
from mypyc.build import mypycify
setup(name="humidity-core",
      ext_modules=mypycify({paths!r}, group_name={group!r}, opt_level="3", target_dir={target!r}))
"""


def main() -> int:
    sources = compiled_sources()
    STAMP.unlink(missing_ok=True)  # interpreted until the build below is complete
    build = ROOT / "build" / "core"
    build.mkdir(parents=True, exist_ok=True)
    setup = build / "setup.py"
    setup.write_text(SETUP.format(paths=[str(p.relative_to(ROOT)) for p in sources], group=GROUP,
                                  target=str(build.relative_to(ROOT))))
    done = subprocess.run([sys.executable, str(setup), "--quiet", "build_ext", "--inplace",
                           "--build-temp", str(build / "temp"), "--build-lib", str(build / "lib")], cwd=ROOT)
    if done.returncode != 0:
        print("compile_core: mypyc failed; the core runs interpreted", file=sys.stderr)
        return done.returncode
    STAMP.write_text(json.dumps({"group": GROUP, "sources": source_hashes(sources)}, indent=1) + "\n")
    print(f"compile_core: {len(sources)} modules of humidity/core compiled with mypyc")
    return 0


if __name__ == "__main__":
    sys.exit(main())
