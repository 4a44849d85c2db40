"""Backends as plugins, and the core's warnings and log messages in Python (issue 14).

The XRT and OpenCL backends are shared modules that libfpyga loads at the first device
discovery; a plugin that is missing, broken or whose vendor library cannot be loaded makes that
backend "not available: <reason>", never an import failure, and emu always works. libfpyga and
fpyga._core themselves name no vendor library. Core warnings reach Python as fpyga.FpygaWarning
(filterable, errors under -W error), debug/info messages the "fpyga" logger, at the level
FPYGA_LOG_LEVEL sets.

Each scenario runs in a fresh interpreter: plugins are loaded once per process.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import fpyga
from conftest import missing_input
from fpyga import _core, _paths

VENDOR = re.compile(r"xrt|OpenCL|uuid", re.IGNORECASE)


def run_python(code, env=None, args=()):
    """Runs `code` in a fresh interpreter with this one's sys.path; returns the CompletedProcess."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    for k, v in (env or {}).items():
        if v is None:
            full_env.pop(k, None)
        else:
            full_env[k] = v
    return subprocess.run([sys.executable, *args, "-c", textwrap.dedent(code)], env=full_env,
                          capture_output=True, text=True, timeout=120)


def loaded_library(name_part):
    """Path of the loaded shared object whose file name contains `name_part`."""
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            if "/" in path and name_part in os.path.basename(path):
                return Path(path)
    raise AssertionError(f"{name_part} is not loaded in this process")


def needed(path):
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


VADD_ON_EMU = """
    import numpy as np, fpyga
    ol = fpyga.Overlay({xclbin!r}, device=fpyga.Device.open("emu"))
    a = fpyga.allocate(64, "u4"); b = fpyga.allocate(64, "u4"); c = fpyga.allocate(64, "u4")
    a[:] = np.arange(64); b[:] = 5; a.sync_to_device(); b.sync_to_device()
    ol.vadd_1.call(a, b, c, 64); c.sync_from_device()
    assert (c == np.arange(64) + 5).all()
    for b in fpyga.Device.backends:
        print(f"{{b.name}}: {{'available' if b.available else 'not available: ' + b.reason}}")
    print("devices:", [d.spec for d in fpyga.Device.devices])
"""


def test_libfpyga_and_core_name_no_vendor_library():
    libs = {"libfpyga": loaded_library("libfpyga.so"), "_core": Path(_core.__file__)}
    for what, path in libs.items():
        names = needed(path)
        assert names, f"readelf found no NEEDED entries in {path}"
        assert not [n for n in names if VENDOR.search(n)], f"{what} ({path}) needs {names}"
    # The vendor libraries are the plugins' business.
    for b in _core.backends():
        if b.name != "emu" and b.available:
            assert any(VENDOR.search(n) for n in needed(b.plugin)), (b.plugin, needed(b.plugin))


def test_backends_list_emu_built_in_and_plugins_beside_libfpyga():
    backends = {b.name: b for b in fpyga.Device.backends}
    assert list(backends)[-1] == "emu"
    assert backends["emu"].available and backends["emu"].plugin == "" and backends["emu"].reason == ""
    plugin_dir = loaded_library("libfpyga.so").parent / "fpyga"
    for name in ("xrt", "opencl"):
        if name not in backends:
            continue  # not built in this configuration (FPYGA_WITH_XRT/OPENCL=OFF)
        b = backends[name]
        assert b.plugin == str(plugin_dir / f"libfpyga_backend_{name}.so")
        assert b.available, b.reason
    assert "not available" not in repr(backends["emu"])


def test_empty_plugin_directory_leaves_emu_working(tmp_path, xclbin_dir):
    empty = tmp_path / "plugins"
    empty.mkdir()
    p = run_python(VADD_ON_EMU.format(xclbin=str(xclbin_dir / "vadd.xclbin")),
                   env={"FPYGA_PLUGIN_DIR": str(empty), "XCL_EMULATION_MODE": "noop"})
    assert p.returncode == 0, p.stderr
    assert f"xrt: not available: no plugin {empty}/libfpyga_backend_xrt.so (FPYGA_PLUGIN_DIR)" in p.stdout
    assert f"opencl: not available: no plugin {empty}/libfpyga_backend_opencl.so" in p.stdout
    assert "emu: available" in p.stdout
    specs = eval(p.stdout.split("devices: ", 1)[1])
    assert "emu:0" in specs and all(s.startswith("emu:") for s in specs), specs
    # Opening the missing backend says why.
    p = run_python("""
        import fpyga
        try:
            fpyga.Device.open("xrt:0")
        except NotImplementedError as e:
            print("refused:", e)
    """, env={"FPYGA_PLUGIN_DIR": str(empty)})
    assert p.returncode == 0, p.stderr
    assert "refused: backend 'xrt' is not available: no plugin" in p.stdout


def test_plugin_whose_vendor_library_is_missing(tmp_path, xclbin_dir):
    """A plugin that needs a library this machine lacks (as libfpyga_backend_xrt.so needs
    libxrt_coreutil.so.2 on a laptop without XRT): the dynamic loader's reason is shown."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        missing_input("no C compiler (cc) to build a plugin with a missing dependency")
    (tmp_path / "vendor.c").write_text("int fpyga_test_vendor_function(void) { return 1; }\n")
    (tmp_path / "plugin.c").write_text(
        "int fpyga_test_vendor_function(void);\n"
        "const void* fpyga_backend_plugin(void) { fpyga_test_vendor_function(); return 0; }\n")
    vendor = tmp_path / "libfpyga_test_vendor.so"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(vendor), str(tmp_path / "vendor.c")], check=True)
    plugin = tmp_path / "libfpyga_backend_xrt.so"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(plugin), str(tmp_path / "plugin.c"),
                    f"-L{tmp_path}", "-lfpyga_test_vendor"], check=True)
    vendor.unlink()  # the vendor library is not installed
    p = run_python(VADD_ON_EMU.format(xclbin=str(xclbin_dir / "vadd.xclbin")),
                   env={"FPYGA_PLUGIN_XRT": str(plugin)})
    assert p.returncode == 0, p.stderr
    line = next(l for l in p.stdout.splitlines() if l.startswith("xrt:"))
    assert line.startswith(f"xrt: not available: cannot load {plugin}: "), line
    assert "libfpyga_test_vendor.so: cannot open shared object file" in line


@pytest.mark.parametrize("content,why", [
    (b"this is not an ELF file\n", "cannot load"),
    (None, "is not an fpyga backend plugin (it exports no fpyga_backend_plugin)"),
])
def test_broken_plugin_is_not_available(tmp_path, content, why):
    plugin = tmp_path / "libfpyga_backend_xrt.so"
    if content is None:
        # A real shared object, but not a plugin.
        cc = shutil.which("cc") or shutil.which("gcc")
        if not cc:
            missing_input("no C compiler (cc) to build a shared object with")
        (tmp_path / "other.c").write_text("int fpyga_test_something_else(void) { return 0; }\n")
        subprocess.run([cc, "-shared", "-fPIC", "-o", str(plugin), str(tmp_path / "other.c")], check=True)
    else:
        plugin.write_bytes(content)
    p = run_python("""
        import fpyga
        print({b.name: (b.available, b.reason) for b in fpyga.Device.backends})
        print([d.spec for d in fpyga.Device.devices])
    """, env={"FPYGA_PLUGIN_XRT": str(plugin)})
    assert p.returncode == 0, p.stderr
    assert why in p.stdout, p.stdout
    assert "'emu:0'" in p.stdout


def test_python_m_fpyga_devices_shows_unavailable_backend(tmp_path):
    empty = tmp_path / "none"
    empty.mkdir()
    full_env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p),
                    FPYGA_PLUGIN_DIR=str(empty))
    try:
        _paths.cli_executable()
    except FileNotFoundError:
        # A build tree without the package's bin/ link: the CLI beside the library's build.
        cli = loaded_library("libfpyga.so").parent / "tools" / "fpyga"
        if not cli.is_file():
            missing_input(f"no fpyga CLI in the package nor at {cli}")
        full_env["FPYGA_CLI"] = str(cli)
    p = subprocess.run([sys.executable, "-m", "fpyga", "devices"], env=full_env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert re.search(r"\nemu +0 ", p.stdout), p.stdout
    assert f"xrt: not available: no plugin {empty}/libfpyga_backend_xrt.so" in p.stdout
    p = subprocess.run([sys.executable, "-m", "fpyga", "devices", "--json"], env=full_env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    listing = json.loads(p.stdout)
    backends = {b["name"]: b for b in listing["backends"]}
    assert backends["emu"]["available"] is True
    assert backends["xrt"]["available"] is False and "no plugin" in backends["xrt"]["reason"]
    specs = [d["spec"] for d in listing["devices"]]
    assert "emu:0" in specs and all(s.startswith("emu:") for s in specs), specs
    p = subprocess.run([sys.executable, "-m", "fpyga", "devcies"], env=full_env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert "'devcies' is not a fpyga subcommand (did you mean 'devices'?)" in p.stderr


# Warnings and logs ------------------------------------------------------------------------------

def test_core_warning_is_an_fpyga_warning_in_python():
    """A real core warning (emu's discovery ignoring a bad FPYGA_EMU_DEVICES) arrives as
    FpygaWarning, at the call that caused it, and can be filtered."""
    p = run_python("""
        import warnings, fpyga
        assert issubclass(fpyga.FpygaWarning, UserWarning)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            specs = [d.spec for d in fpyga.Device.devices]
            print("caught at return:", [(w.category.__name__, str(w.message)) for w in caught])
        print(specs)
    """, env={"FPYGA_EMU_DEVICES": "lots"})
    assert p.returncode == 0, p.stderr
    assert "caught at return: [('FpygaWarning', \"FPYGA_EMU_DEVICES='lots' is not a count" in p.stdout
    assert "fpyga warning" not in p.stderr  # Python got it, not stderr
    # Ignored by a filter: nowhere.
    p = run_python("import fpyga; fpyga.Device.devices; print('ok')",
                   env={"FPYGA_EMU_DEVICES": "lots"}, args=("-W", "ignore::fpyga.FpygaWarning"))
    assert p.returncode == 0 and p.stdout == "ok\n" and "FPYGA_EMU_DEVICES" not in p.stderr, p.stderr


def test_category_on_the_command_line_before_numpy_is_importable():
    """Python resolves `-W ...::fpyga.FpygaWarning` at start-up, before site-packages are on the
    path: fpyga (from PYTHONPATH) then fails to import NumPy. The filter is ignored, as Python
    says, and a later `import fpyga` works (it used to fail: "type ... is already registered")."""
    package_parent = str(Path(fpyga.__file__).resolve().parent.parent)
    p = run_python("import fpyga; print(fpyga.Device.open('emu').spec)",
                   env={"PYTHONPATH": package_parent}, args=("-W", "error::fpyga.FpygaWarning"))
    assert p.returncode == 0, p.stderr
    assert p.stdout == "emu:0\n"


def test_minus_w_error_raises_the_warning_where_the_call_returns():
    p = run_python("""
        import fpyga
        try:
            fpyga.Device.devices
        except fpyga.FpygaWarning as e:
            print("raised:", e)
        print("device still usable:", fpyga.Device.open("emu").spec)
    """, env={"FPYGA_EMU_DEVICES": "lots"}, args=("-W", "error"))
    assert p.returncode == 0, p.stderr
    assert "raised: FPYGA_EMU_DEVICES='lots' is not a count" in p.stdout
    assert "device still usable: emu:0" in p.stdout


def test_warnings_from_other_threads_reach_python():
    p = run_python("""
        import threading, time, warnings, fpyga
        from fpyga import _core
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t = threading.Thread(target=_core._warn, args=("from a worker thread",))
            t.start(); t.join()
            for _ in range(100):
                if caught: break
                time.sleep(0.01)
        print([(w.category.__name__, str(w.message)) for w in caught])
    """)
    assert p.returncode == 0, p.stderr
    assert "[('FpygaWarning', 'from a worker thread')]" in p.stdout


def test_log_level_from_the_environment():
    code = """
        import logging, warnings, fpyga
        from fpyga import _core
        records = []
        class keep(logging.Handler):
            def emit(self, r): records.append((r.levelname, r.getMessage()))
        logging.getLogger("fpyga").addHandler(keep()); logging.getLogger("fpyga").setLevel(logging.DEBUG)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fpyga.Device.devices
        print("level", _core.log_level())
        print("warnings", len(caught))
        print("records", records)
    """
    p = run_python(code, env={"FPYGA_LOG_LEVEL": "debug", "FPYGA_EMU_DEVICES": "lots"})
    assert p.returncode == 0, p.stderr
    assert "level debug" in p.stdout and "warnings 1" in p.stdout
    assert "('DEBUG', 'backend emu: built in')" in p.stdout
    p = run_python(code, env={"FPYGA_LOG_LEVEL": "off", "FPYGA_EMU_DEVICES": "lots"})
    assert p.returncode == 0, p.stderr
    assert "level off" in p.stdout and "warnings 0" in p.stdout and "records []" in p.stdout
    p = run_python(code, env={"FPYGA_LOG_LEVEL": None, "FPYGA_EMU_DEVICES": "lots"})
    assert "level warning" in p.stdout and "warnings 1" in p.stdout and "records []" in p.stdout
    with pytest.raises(ValueError, match="log level 'loud' is not one of"):
        _core.set_log_level("loud")
