"""Builds and installs the fpyga Python package (fpyga._core through CMake, plus the pure-Python
layer) into any virtual environment whose host has fpyga's native build dependencies (the Debian
packages the Makefile lists):

    python -m pip install -r requirements.txt
    python -m pip install --no-build-isolation .

The extension's shared library libfpyga is installed inside the package, next to _core (whose
RPATH is $ORIGIN), so the package needs nothing else at run time. `make build` installs the
package its own way (CMake into .venv); this file is for `pip install .` elsewhere.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


def runtime_requirements():
    """The pins under the '# runtime' heading of requirements.txt, up to the next heading."""
    reqs, in_runtime = [], False
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.strip()
        if line.startswith("#"):  # any comment after the runtime pins starts another part
            in_runtime = line.lstrip("#").strip().lower().startswith("runtime")
            continue
        if in_runtime and line:
            reqs.append(line)
    return reqs


def project_version():
    text = (ROOT / "CMakeLists.txt").read_text()
    m = re.search(r"project\(fpyga VERSION ([0-9.]+)", text)
    return m.group(1) if m else "0.0.0"


class CMakeExtension(Extension):
    def __init__(self, name):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    """Configures the project with only the library and the extension, builds, and installs them
    into a staging prefix, then copies _core and libfpyga into the package."""

    def build_extension(self, ext):
        build_dir = Path(self.build_temp).resolve() / "cmake"
        stage = Path(self.build_temp).resolve() / "stage"
        build_dir.mkdir(parents=True, exist_ok=True)
        if stage.exists():
            shutil.rmtree(stage)
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", "2")
        configure = [
            "cmake", "-S", str(ROOT), "-B", str(build_dir),
            f"-DPython_EXECUTABLE={sys.executable}",
            "-DCMAKE_BUILD_TYPE=Release",
            f"-DCMAKE_INSTALL_PREFIX={stage}",
            "-DFPYGA_PYTHON_INSTALL_DIR=python",
            "-DFPYGA_BUILD_TESTS=OFF", "-DFPYGA_BUILD_KERNELS=OFF", "-DFPYGA_BUILD_BENCH=OFF",
            "-DFPYGA_BUILD_TOOLS=OFF", "-DFPYGA_BUILD_PYTHON=ON",
        ]
        subprocess.run(configure, check=True)
        subprocess.run(["cmake", "--build", str(build_dir), "--target", "fpyga_python", "-j", jobs],
                       check=True)
        subprocess.run(["cmake", "--install", str(build_dir)], check=True)

        target = Path(self.get_ext_fullpath(ext.name)).resolve().parent
        target.mkdir(parents=True, exist_ok=True)
        cores = list((stage / "python" / "fpyga").glob("_core*.so"))
        if not cores:
            raise RuntimeError(f"the CMake build did not install fpyga._core under {stage}")
        shutil.copy2(cores[0], target / Path(self.get_ext_fullpath(ext.name)).name)
        # libfpyga under its SONAME, found through _core's $ORIGIN RPATH.
        libdir = next(p for p in (stage / "lib", stage / "lib64") if p.is_dir())
        for lib in libdir.glob("libfpyga.so.*"):
            if lib.is_symlink() and len(lib.name.split(".")) == 3:  # libfpyga.so.<major>
                shutil.copy2(lib.resolve(), target / lib.name)


setup(
    name="fpyga",
    version=project_version(),
    description="Host runtime for FPGA accelerator cards (AWS F1, Alveo) with PYNQ's Python API",
    long_description=(ROOT / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    package_dir={"": "python"},
    packages=find_packages("python"),
    package_data={"fpyga": ["_core.pyi", "py.typed"]},
    ext_modules=[CMakeExtension("fpyga._core")],
    cmdclass={"build_ext": CMakeBuild},
    install_requires=runtime_requirements(),
    zip_safe=False,
)
