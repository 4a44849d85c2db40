"""Overlays: an xclbin loaded on a device, shaped like PYNQ 3.0.1's ``Overlay`` on Alveo/XRT."""

import os
import warnings

from . import _core
from .device import Device, Memory, _attribute_name
from .driver import DefaultIP, UnsupportedConfiguration, driver_for
from .kernel import Kernel, WaitHandle
from .repr_dict import ReprDict
from .stream import FreeRunningIP, streams_of
from .xclbin import clock_dict, ip_dict, mem_dict

__all__ = ["DefaultIP", "Overlay", "UnsupportedConfiguration", "WaitHandle"]


class Overlay:
    """An xclbin or awsxclbin loaded on a device.

    Kernels are attributes by compute-unit instance name (``ol.vadd_1``) and by kernel name
    where that is unambiguous (``ol.vadd``, every CU of the kernel); used memory banks are
    attributes by tag without non-alphanumerics (``ol.bank0``, ``ol.DDR0``, ``ol.HBM0``).

    Parameters
    ----------
    bitfile_name : str or os.PathLike
        Path of the xclbin or awsxclbin.
    dtbo : None
        PYNQ's device tree overlay, which exists only on Zynq boards: must be None.
    download : bool
        Load it onto the device now (default). Otherwise call :meth:`download` later.
    ignore_version : bool
        Accepted for compatibility with PYNQ (xclbins carry no PYNQ version).
    device : Device, optional
        The device to load it on; default ``Device.active_device``.
    gen_cache : bool
        Accepted for compatibility with PYNQ (which does nothing with it on XRT either).

    Attributes
    ----------
    ip_dict : dict
        One entry per compute unit, with PYNQ's keys (phys_addr, registers, cu_name, ...,
        and ``device`` and ``driver``: the class an attribute of this compute unit is built
        with, see :class:`fpyga.DefaultIP`).
    mem_dict : dict
        One entry per memory bank, by raw tag.
    clock_dict : dict
        The clocks, as ``clock0``, ``clock1``...
    device : Device
        The device it is (or will be) loaded on.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        When the file is not a valid xclbin (the message names the file and section).
    """

    def __init__(self, bitfile_name, dtbo=None, download=True, ignore_version=False, device=None,
                 gen_cache=False):
        _no_dtbo(dtbo)
        path = os.fspath(bitfile_name)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Overlay: bitstream file {path!r} does not exist")
        self.bitfile_name = os.path.abspath(path)
        if device is None:
            device = Device.active_device
        elif not isinstance(device, Device):
            raise TypeError(f"Overlay: device must be a fpyga.Device, got {type(device).__name__}")
        self.device = device
        self.ignore_version = ignore_version
        self._core = None
        self._attributes = []
        if download:
            self.download()
        else:
            # OpenCL C sources have no description until a device builds them.
            self._xclbin = _core.xclbin.read(self.bitfile_name)
            self._describe()

    def _describe(self):
        self.ip_dict = ReprDict(ip_dict(self._xclbin), rootname="ip_dict")
        self.mem_dict = ReprDict(mem_dict(self._xclbin), rootname="mem_dict")
        self.clock_dict = ReprDict(clock_dict(self._xclbin), rootname="clock_dict")
        # PYNQ's Zynq-side dictionaries, empty for an xclbin as in PYNQ on XRT.
        for name in ("gpio_dict", "interrupt_controllers", "interrupt_pins", "hierarchy_dict"):
            setattr(self, name, ReprDict(rootname=name))
        self.pr_dict = {}
        self.dtbo = None
        # As PYNQ's, entries name the device and the driver class their attribute gets.
        for desc in self.ip_dict.values():
            desc["device"] = self.device
            desc["driver"] = driver_for(desc, self.ignore_version)
        self.__doc__ = self._docstring()

    def download(self, dtbo=None):
        """Loads the xclbin onto the device (replacing what the device had loaded).

        Downloading the overlay that is loaded reloads nothing (XRT, too, skips a load of the
        xclbin a device holds): compute-unit objects taken before keep working. The same goes
        for a new Overlay of the file another Overlay object loaded on the device: both share
        the program (and ``free()`` of either unloads it).

        Raises
        ------
        ValueError, RuntimeError
            When the load fails: the device keeps what it had loaded. When building the
            compute units' drivers fails after the load, the new program is released whole
            (nothing stays loaded that no overlay owns) and the driver's error is raised.
        """
        _no_dtbo(dtbo)
        if self.is_loaded():
            self._describe()
            return
        current = self.device._loaded_overlay()
        shared = current is not None and _same_xclbin(current, self.bitfile_name)
        # The file another Overlay object loaded here: share its program, so that both objects'
        # kernels work (PYNQ re-downloads, which XRT skips for the loaded uuid).
        core = current._core if shared else _core.overlay(self.device._core, self.bitfile_name)
        try:
            self._core = core
            self._xclbin = core.xclbin
            self.device._set_loaded_overlay(self)
            self._describe()
            self._bind_attributes()
        except BaseException:
            # Either the other overlay keeps its program, fully, or the new one goes, whole.
            self._unbind()
            self._core = None
            if not shared:
                core.release()
            self.device._set_loaded_overlay(current if shared else None)
            raise

    def is_loaded(self):
        """bool: True while this overlay is the one loaded on its device."""
        return self._core is not None and self._core.loaded

    def free(self):
        """Unloads the overlay from the device.

        Raises
        ------
        RuntimeError
            While runs are in flight (the overlay stays loaded).
        """
        if self._core is not None:
            self._core.release()
            if self.device._loaded_overlay() is self:
                self.device._set_loaded_overlay(None)
        self._unbind()

    def _unbind(self):
        for name in self._attributes:
            self.__dict__.pop(name, None)
        self._attributes = []

    def reset(self):
        """Resets the overlay's description dictionaries to their state from the file."""
        self._describe()

    @property
    def xclbin(self):
        """fpyga._core.xclbin: the parsed file (uuid, target, agfi, platform, sections)."""
        return self._xclbin

    @property
    def kernels(self):
        """dict: ``{attribute name: Kernel}`` of the loaded overlay."""
        return {n: getattr(self, n) for n in self._attributes if isinstance(getattr(self, n), Kernel)}

    @property
    def memories(self):
        """dict: ``{attribute name: Memory}`` of the used banks."""
        return {n: getattr(self, n) for n in self._attributes if isinstance(getattr(self, n), Memory)}

    def _free_name(self, name):
        return name.isidentifier() and not hasattr(type(self), name) and name not in self.__dict__

    def _bind_attributes(self):
        for name in self._attributes:
            self.__dict__.pop(name, None)
        self._attributes = []

        def add(name, value):
            self.__dict__[name] = value
            self._attributes.append(name)

        streams, stream_ports = streams_of(self._xclbin)

        def with_streams(obj, insts):
            # PYNQ's kernel.streams: {argument: XrtStream} of the stream-connected arguments.
            try:
                obj.streams = {arg: streams[tag] for (inst, arg), tag in stream_ports.items()
                               if inst in insts}
            except AttributeError:
                pass
            return obj

        by_kernel = {}
        free_running = set()
        for inst, desc in self.ip_dict.items():
            kernel_name = desc["cu_name"].partition(":")[0]
            if desc.get("hw_control_protocol") == "ap_ctrl_none":
                # No control registers: nothing the host starts, so no kernel handle.
                free_running.add(kernel_name)
                if self._free_name(inst):
                    add(inst, with_streams(FreeRunningIP(inst, desc), {inst}))
                continue
            by_kernel.setdefault(kernel_name, []).append(inst)
            if self._free_name(inst):
                add(inst, with_streams(_driver(inst, desc), {inst}))
        for kernel_name in free_running - set(by_kernel):
            if self._free_name(kernel_name):
                insts = {i for i, d in self.ip_dict.items() if d["cu_name"].startswith(kernel_name + ":")}
                add(kernel_name, with_streams(FreeRunningIP(kernel_name, self.ip_dict[min(insts)]), insts))
        for kernel_name, insts in by_kernel.items():
            if self._free_name(kernel_name):
                add(kernel_name, with_streams(Kernel(self._core, kernel_name, self.ip_dict[insts[0]]),
                                              set(insts)))
        # Kernels the metadata gives no instances for (some old sw_emu files) are still callable.
        for kernel_name in self._core.kernel_names():
            if kernel_name not in by_kernel and kernel_name not in free_running and self._free_name(kernel_name):
                add(kernel_name, Kernel(self._core, kernel_name))
        raw_types = {x.index: x.raw_type for x in self._xclbin.memories}
        for m in self._core.memories():
            if not m.used:
                continue
            if raw_types.get(m.index) == 9:  # a stream between kernels: no memory to allocate in
                value = streams.get(m.tag)
                if value is None:
                    continue
            else:
                value = Memory(m)
            # The tag's own spelling where it is an identifier (ol.dc_0, ol.bank0, as PYNQ users
            # write), and its alphanumerics as an alias (ol.dc0, ol.DDR0 for DDR[0]).
            names = [m.tag] if m.tag.isidentifier() else []
            if _attribute_name(m.tag) not in names:
                names.append(_attribute_name(m.tag))
            for name in names:
                if self._free_name(name):
                    add(name, value)

    def __getattr__(self, name):
        # Only reached for names not set: say why a kernel or bank is not there.
        ips = self.__dict__.get("ip_dict", {})
        if name in ips or any(d["cu_name"].startswith(name + ":") for d in ips.values()):
            raise AttributeError(
                f"kernel {name!r} is not available: the overlay is not loaded (call download())"
            )
        raise AttributeError(f"'Overlay' object has no attribute {name!r}")

    def gen_cache(self):
        """Accepted for compatibility with PYNQ, which caches nothing for an xclbin either."""

    def _docstring(self):
        lines = [f"Overlay {os.path.basename(self.bitfile_name)}", ""]
        lines.append("Kernels (compute units)")
        lines.append("-----------------------")
        for inst, desc in self.ip_dict.items():
            args = ", ".join(
                f"{n}: {r['type']}" for n, r in desc["registers"].items() if n != "CTRL"
            )
            driver = desc.get("driver", Kernel)
            lines.append(f"{inst} : {driver.__module__}.{driver.__qualname__}  "
                         f"({desc['cu_name']}({args}))")
        lines.append("")
        lines.append("Memories")
        lines.append("--------")
        for tag, m in self.mem_dict.items():
            if m["used"]:
                size = m.get("size", 0)
                lines.append(f"{_attribute_name(tag)} : fpyga.Memory  ({tag}, {m['type']}, "
                             f"{size} bytes)")
        return "\n".join(lines)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._attributes))

    def __repr__(self):
        state = "loaded" if self.is_loaded() else "not loaded"
        return f"<fpyga.Overlay {self.bitfile_name} on {self.device.spec} ({state})>"


def _same_xclbin(overlay, path):
    """True when ``path`` is the file ``overlay`` loaded, unchanged (same file, same uuid)."""
    try:
        if not os.path.samefile(overlay.bitfile_name, path):
            return False
        return _core.xclbin.read(path).uuid == overlay._core.xclbin.uuid
    except (OSError, ValueError):
        return False


def _no_dtbo(dtbo):
    if dtbo is not None:
        raise ValueError(f"Overlay: dtbo={dtbo!r}: device tree overlays exist only on Zynq "
                         f"boards; an xclbin on a card has none (pass dtbo=None)")


def _driver(name, desc):
    """The compute unit's attribute: its driver class built with its ip_dict entry; DefaultIP
    when the driver declines the configuration (UnsupportedConfiguration), as in PYNQ."""
    try:
        return desc["driver"](desc)
    except UnsupportedConfiguration as e:
        warnings.warn(f"Configuration of IP {name} not supported by {desc['driver'].__name__}: "
                      f"{e}; using DefaultIP", UserWarning, stacklevel=4)
        return DefaultIP(desc)
