"""Where the installed package keeps its native parts, found as resources of the package itself.

A wheel installs the whole C++ prefix inside the package directory (``pyproject.toml``:
``wheel.install-dir = "fpyga"``)::

    fpyga/bin/fpyga, fpyga/bin/fpyga_demo_host      the CLI and the demo's C++ host
    fpyga/lib/libfpyga.so*, fpyga/lib/fpyga/        the library and its backend plugins
    fpyga/include/fpyga/                            the public C++ headers
    fpyga/lib/cmake/fpyga/                          find_package(fpyga), FpygaKernels.cmake
    fpyga/share/fpyga/xclbin/, .../models/          the project's sw_emu xclbins, the demo's models

A CMake build tree (``PYTHONPATH=<build>/python``) links ``bin/`` and ``share/fpyga/`` to the
same places (python/CMakeLists.txt); it has no headers or CMake package to offer.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

__all__ = ["cli_executable", "cmake_dir", "demo_host", "get_cmake_dir", "get_include",
           "include_dir", "library_dir", "models_dir", "package_dir", "xclbin_dir"]


def package_dir() -> Path:
    """The directory of the installed ``fpyga`` package."""
    # An installed package is a plain directory: the native parts must be real files to be run,
    # loaded or handed to CMake, so no extraction (resources.as_file) is attempted.
    return Path(str(resources.files("fpyga")))


def _package_roots() -> list[Path]:
    """The package directory, then any further location the import system gives the package
    (an editable install keeps the Python files in the checkout and the built parts in
    site-packages, both on the package's ``__path__``)."""
    import fpyga

    roots = [package_dir()]
    for p in getattr(fpyga, "__path__", []):
        if Path(p) not in roots:
            roots.append(Path(p))
    return roots


def _resource(*parts: str, what: str, kind: str = "dir") -> Path:
    for root in _package_roots():
        p = root.joinpath(*parts)
        if p.is_dir() if kind == "dir" else (p.is_file() and os.access(p, os.X_OK)):
            return p
    raise FileNotFoundError(f"fpyga: {what} is not part of this installation (looked in "
                            f"{', '.join(str(r) for r in _package_roots())}); install fpyga with pip "
                            "(`pip install fpyga`, or `pip install .` in a checkout)")


def _from_env(var: str) -> Path | None:
    value = os.environ.get(var)
    return Path(value) if value else None


def cli_executable() -> Path:
    """The ``fpyga`` command-line executable (``$FPYGA_CLI`` overrides it)."""
    return _from_env("FPYGA_CLI") or _resource("bin", "fpyga", what="the fpyga CLI executable", kind="exe")


def demo_host() -> Path:
    """The demo's C++ host ``fpyga_demo_host`` (``$FPYGA_DEMO_HOST`` overrides it)."""
    return _from_env("FPYGA_DEMO_HOST") or _resource("bin", "fpyga_demo_host", what="the demo's C++ host",
                                                     kind="exe")


def cmake_dir() -> Path:
    """The CMake package: ``cmake -Dfpyga_DIR=$(python -m fpyga --cmakedir)``, or put
    ``fpyga.get_cmake_dir()`` on ``CMAKE_PREFIX_PATH``. ``FpygaKernels.cmake`` (the kernel
    toolchain, ``fpyga_add_xclbin``) is in the same directory."""
    return _resource("lib", "cmake", "fpyga", what="the CMake package (lib/cmake/fpyga)")


def include_dir() -> Path:
    """The directory holding ``fpyga/fpyga.hpp``."""
    return _resource("include", what="the C++ headers (include/fpyga)")


def library_dir() -> Path:
    """The directory holding ``libfpyga.so`` and, under ``fpyga/``, its backend plugins."""
    return _resource("lib", what="the C++ library (lib/libfpyga.so)")


def xclbin_dir() -> Path:
    """The project's kernels as sw_emu xclbins (``vadd.xclbin``, ``mlp.xclbin``, ...)."""
    return _resource("share", "fpyga", "xclbin", what="the project's xclbins (share/fpyga/xclbin)")


def models_dir() -> Path:
    """The demo's trained models (``<name>.json``, ``.h5``, ``.meta.json``)."""
    return _resource("share", "fpyga", "models", what="the demo's models (share/fpyga/models)")


# The names pybind11 uses for the same purpose.
get_cmake_dir = cmake_dir


def get_include() -> str:
    """The C++ include directory, as a string (as ``pybind11.get_include()``)."""
    return str(include_dir())
