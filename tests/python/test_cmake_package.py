"""The installed CMake package: a C++ application builds with find_package(fpyga) against the
package `make build` installs into the virtual environment (fpyga.get_cmake_dir()) and runs the
paper's flow."""

import os
import shutil
import subprocess
from pathlib import Path

from conftest import missing_input

import fpyga
from fpyga import _paths

REPO = Path(__file__).resolve().parents[2]


def test_examples_build_with_find_package_and_run(tmp_path):
    if shutil.which("cmake") is None:
        missing_input("cmake is not installed")
    try:
        cmake_dir, xclbins = fpyga.get_cmake_dir(), _paths.xclbin_dir()
    except FileNotFoundError as e:  # fpyga imported from a build tree
        missing_input(f"{e} (run `make build`)")
    if not (xclbins / "vadd.xclbin").is_file():
        missing_input(f"no installed xclbins in {xclbins} (run `make build`)")
    build = tmp_path / "build"
    env = {k: v for k, v in os.environ.items() if k != "FPYGA_DEVICE"}
    subprocess.run(["cmake", "-S", str(REPO / "examples" / "cpp"), "-B", str(build),
                    f"-Dfpyga_DIR={cmake_dir}"], check=True, capture_output=True, env=env)
    subprocess.run(["cmake", "--build", str(build), "--target", "paper_flow"], check=True,
                   capture_output=True, env=env)
    run = subprocess.run([str(build / "paper_flow"), str(xclbins)], capture_output=True, text=True,
                         env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "1024 sums correct" in run.stdout
    assert "mlp on emu:0" in run.stdout
