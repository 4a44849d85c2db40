"""Power sensors and their recording, shaped like PYNQ's ``pynq.pmbus`` on Alveo.

``Device.sensors`` gives the card's power rails (``sensors["12v_pex"].power.value`` in watts),
and a :class:`DataRecorder` samples chosen sensors in a thread into a pandas DataFrame::

    rails = fpyga.Device.active_device.sensors
    recorder = DataRecorder(rails["12v_aux"].power, rails["vccint"].power)
    with recorder.record(0.1):     # a sample every 0.1 s
        ...                        # the work to measure; recorder.mark() separates phases
    recorder.frame                 # Mark, 12v_aux_power, vccint_power; indexed by time

Values are read from XRT's device information on a card. A device that measures nothing (emu,
XRT's noop shim) still lists PYNQ's rails, with sensors whose value is None (recorded as NaN),
never a made-up number; ``Sensor.note`` says why.
"""

import threading

__all__ = ["DataRecorder", "Rail", "Sensor", "get_rails", "get_xrt_sysfs_rails"]

#: The rails PYNQ 3.0.1 lists for an Alveo card, in its order.
XRT_RAIL_NAMES = ("0v85", "12v_aux", "12v_pex", "12v_sw", "1v8", "3v3_aux", "3v3_pex",
                  "mgt0v9avcc", "mgtavtt", "sys_5v5", "vccint")


class Sensor:
    """One measured quantity of a rail: ``value`` (a fresh reading: V, A or W; None when the
    device does not measure it), ``name`` (``"12v_pex_power"``) and ``unit``.

    As in PYNQ, a sensor may derive its value from ``parents`` (objects with ``get_value()``):
    a DataRecorder reads each parent once per sample, so the rails of one device cost one query
    of the device per sample, not one per sensor.
    """

    def __init__(self, name, unit, read, note="", parents=()):
        self.name = name
        self.unit = unit
        self.note = note
        self._read = read
        self.parents = tuple(parents)

    @property
    def value(self):
        return self.get_value()

    def get_value(self, parents=None):
        if parents is None:
            parents = [p.get_value() for p in self.parents]
        return self._read(*parents)

    def __repr__(self):
        v = self.value
        shown = f"{v}{self.unit}" if v is not None else f"None ({self.note or 'not measured'})"
        return f"Sensor {{name={self.name}, value={shown}}}"


class Rail:
    """A power rail with up to three sensors (None where the card has none)."""

    def __init__(self, name, voltage=None, current=None, power=None):
        self.name = name
        self.voltage = voltage
        self.current = current
        self.power = power

    def __repr__(self):
        parts = [f"name={self.name}"] + [f"{k}={getattr(self, k)!r}"
                                        for k in ("voltage", "current", "power")
                                        if getattr(self, k) is not None]
        return f"XrtRail {{{', '.join(parts)}}}"


def get_xrt_sysfs_rails(device=None):
    """The power rails of a device, ``{name: Rail}`` (what ``Device.sensors`` returns).

    Parameters
    ----------
    device : Device, optional
        Default ``Device.active_device``.
    """
    from .device import Device

    if device is None:
        device = Device.active_device
    core = device._core
    if not hasattr(core, "sensors"):
        note = "this build of fpyga reads no device sensors"
        return _unmeasured_rails(note)
    first = core.sensors()
    if not first.rails:
        return _unmeasured_rails(first.note or f"{device.spec} reports no rails")

    readings = _DeviceReadings(core)

    def sensor(rail, suffix, unit, field):
        def read(now):
            return next((getattr(r, field) for r in now.rails if r.name == rail), None)
        return Sensor(f"{rail}_{suffix}", unit, read, parents=(readings,))

    rails = {}
    for r in first.rails:
        rails[r.name] = Rail(
            r.name,
            sensor(r.name, "vol", "V", "volts") if r.volts is not None else None,
            sensor(r.name, "curr", "A", "amps") if r.amps is not None else None,
            sensor(r.name, "power", "W", "watts") if r.watts is not None else None)
    return rails


class _DeviceReadings:
    """The parent of a device's sensors: one query of all its readings."""

    name = "device readings"
    parents = ()

    def __init__(self, core):
        self._core = core

    def get_value(self, parents=None):
        return self._core.sensors()


def _unmeasured_rails(note):
    def nothing():
        return None

    return {n: Rail(n, *(Sensor(f"{n}_{q}", u, nothing, note)
                         for q, u in (("vol", "V"), ("curr", "A"), ("power", "W"))))
            for n in XRT_RAIL_NAMES}


def get_rails(config_file=None):
    """PYNQ's rails read through libsensors on a Zynq board's PMBus. A host has none of its
    own to report: returns ``{}`` (use ``Device.sensors`` for a card's rails)."""
    return {}


class DataRecorder:
    """Samples sensors in a background thread while a ``with recorder.record(interval):``
    block runs.

    Parameters
    ----------
    *sensors : Sensor
        The sensors to record, one column each (named by ``Sensor.name``).
    """

    def __init__(self, *sensors):
        import pandas  # noqa: F401  (needed for frame; imported now, not in the first sample)

        for s in sensors:
            if not hasattr(s, "get_value") or not hasattr(s, "name"):
                raise TypeError(f"DataRecorder: {s!r} is not a sensor (a Rail's voltage, current "
                                f"or power; None means the rail has no such sensor)")
        self._sensors = sensors
        self._columns = ["Mark"] + [s.name for s in sensors]
        self._rows = []
        self._times = []
        self._record_index = -1
        self._lock = threading.Lock()
        self._thread = None
        self._stop = threading.Event()

    def record(self, interval):
        """Starts sampling every ``interval`` seconds; returns the recorder (a context manager
        that stops it)."""
        if self._thread is not None:
            raise RuntimeError("DataRecorder is already recording")
        if not interval > 0:
            raise ValueError(f"DataRecorder.record: interval must be positive seconds, got "
                             f"{interval!r}")
        self._stop.clear()
        self._record_index += 1
        self._thread = threading.Thread(target=self._sample, args=(interval,), daemon=True,
                                        name="fpyga-DataRecorder")
        self._thread.start()
        return self

    def _sample(self, interval):
        import pandas as pd

        while True:
            values = _sample_all(self._sensors)
            with self._lock:
                self._times.append(pd.Timestamp.now())
                self._rows.append([self._record_index] +
                                  [float("nan") if v is None else v for v in values])
            if self._stop.wait(interval):
                return

    def stop(self):
        """Stops sampling (the samples stay in ``frame``)."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None

    def mark(self):
        """Starts a new phase: later samples carry the next ``Mark`` number; returns it."""
        with self._lock:
            self._record_index += 1
            return self._record_index

    def reset(self):
        """Forgets the samples, keeping the sensors."""
        with self._lock:
            self._rows.clear()
            self._times.clear()
            self._record_index = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def __del__(self):
        if getattr(self, "_thread", None) is not None:
            self.stop()

    @property
    def frame(self):
        """pandas.DataFrame: one row per sample, indexed by time: ``Mark`` (the phase) and one
        column per sensor (NaN where the device measures nothing)."""
        import pandas as pd

        with self._lock:
            rows, times = list(self._rows), list(self._times)
        return pd.DataFrame(rows, columns=self._columns, index=pd.DatetimeIndex(times),
                            dtype="f4")


def _sample_all(sensors):
    """One value per sensor, reading every parent shared by several sensors once."""
    seen = {}

    def value(s):
        if id(s) not in seen:
            seen[id(s)] = s.get_value([value(p) for p in s.parents])
        return seen[id(s)]

    return [value(s) for s in sensors]
