"""``python -m fpyga``: the ``fpyga`` command line (the same program as the ``fpyga`` command).

``python -m fpyga devices``, ``python -m fpyga xclbin info FILE``, ... run the CLI executable the
package ships (``fpyga._paths.cli_executable()``), with the exit status it returns.
``python -m fpyga --cmakedir`` prints the CMake package's directory (as ``python -m pybind11
--cmakedir`` does), for ``cmake -Dfpyga_DIR=...``.
"""

import os
import subprocess
import sys

from . import _paths


def main(argv=None):
    """Runs the fpyga CLI with ``argv`` (default: ``sys.argv[1:]``) and returns its exit status.

    The console script ``fpyga`` calls this too. The CLI's ``fpyga hls4ml`` runs Python
    modules: it is told to use this interpreter (``FPYGA_PYTHON``), whichever the build saw.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    if args == ["--cmakedir"]:
        print(_paths.cmake_dir())
        return 0
    try:
        exe = _paths.cli_executable()
    except FileNotFoundError as e:
        print(e, file=sys.stderr)  # names what is missing and where it looked
        return 1
    env = dict(os.environ)
    env.setdefault("FPYGA_PYTHON", sys.executable)
    try:
        # A child rather than exec: the console script's caller (pip's launcher, a notebook's
        # subprocess) keeps its process and gets the CLI's exit status.
        return subprocess.call([str(exe), *args], env=env)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
