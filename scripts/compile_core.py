"""Compile the pure core (every module of humidity/core) with mypyc, in place.

    make compile        (run by `make run`, `make test`, `make soak`, `make bench`)

The same sources stay the one implementation: the extension modules are
built next to them, and `humidity/core/__init__.py` imports them only while
`compiled.json` (written last, with each source's SHA-256) matches the
sources. Otherwise the modules run interpreted. mypyc type-checks first, so
a type error in the core stops the build with mypy's message. It writes one
C file per module (``multi_file``), compiled on every core at once, because
`make test` pays for the build on every clean clone.
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
import os
from concurrent.futures import ThreadPoolExecutor

from setuptools import setup
from setuptools._distutils import ccompiler
from mypyc.build import mypycify


def compile_in_parallel(self, sources, output_dir=None, macros=None, include_dirs=None, debug=0,
                        extra_preargs=None, extra_postargs=None, depends=None):
    # distutils compiles an extension's C files one by one; mypyc writes one per module
    macros, objects, extra_postargs, pp_opts, build = self._setup_compile(
        output_dir, macros, include_dirs, sources, depends, extra_postargs)
    cc_args = self._get_cc_args(pp_opts, debug, extra_preargs)

    def one(obj):
        src, ext = build[obj]
        self._compile(obj, src, ext, cc_args, extra_postargs, pp_opts)

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(one, objects))
    return objects


ccompiler.CCompiler.compile = compile_in_parallel
setup(name="humidity-core",
      ext_modules=mypycify({paths!r}, group_name={group!r}, opt_level="3", target_dir={target!r},
                           multi_file=True))
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
