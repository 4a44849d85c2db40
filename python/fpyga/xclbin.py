"""PYNQ's description dictionaries (``ip_dict``, ``mem_dict``, ``clock_dict``) of an xclbin.

The file is parsed by fpyga's C++ xclbin library; this module only arranges what it found
into the keys and value shapes PYNQ 3.0.1 gives on Alveo and F1.
"""

from . import _core

__all__ = ["XclBin", "ip_dict", "mem_dict", "clock_dict"]

# PYNQ's names for MEM_TOPOLOGY types, by raw value.
_MEMORY_TYPE_NAMES = {
    0: "DDR3",
    1: "DDR4",
    2: "DRAM",
    3: "Streaming",
    4: "Preallocated",
    5: "ARE",
    6: "HBM",
    7: "BRAM",
    8: "URAM",
    9: "AXI Stream",
    10: "Host",
    11: "PS Kernel",
}
_CLOCK_ORDER = ["UNUSED", "DATA", "KERNEL", "SYSTEM"]

_CTRL_FIELDS = {
    "AP_START": (0, "read-write", "Start the accelerator"),
    "AP_DONE": (1, "read-only", "Accelerator has finished - cleared on read"),
    "AP_IDLE": (2, "read-only", "Accelerator is idle"),
    "AP_READY": (3, "read-only", "Accelerator is ready to start next computation"),
    "AUTO_RESTART": (7, "read-write", "Restart the accelerator automatically when finished"),
}


def _ctrl_register(control):
    fields = {
        name: {"access": access, "bit_offset": bit, "bit_width": 1, "description": text}
        for name, (bit, access, text) in _CTRL_FIELDS.items()
    }
    if control == "ap_ctrl_chain":
        fields["AP_CONTINUE"] = {
            "access": "read-write",
            "bit_offset": 4,
            "bit_width": 1,
            "description": "Invoke next iteration of kernel",
        }
    return {
        "address_offset": 0,
        "access": "read-write",
        "size": 4,
        "description": "OpenCL Control Register",
        "type": "unsigned int",
        "id": None,
        "fields": fields,
    }


def ip_dict(xcl):
    """PYNQ's ``ip_dict`` of a parsed xclbin: one entry per compute unit, by instance name.

    Parameters
    ----------
    xcl : fpyga._core.xclbin

    Returns
    -------
    dict
        ``{instance: {phys_addr, addr_range, type, hw_control_protocol, fullpath, registers,
        streams, mem_id, state, interrupts, gpio, xclbin_uuid, cu_name, index, cu_index}}``,
        sorted by instance name.
    """
    uuid = xcl.uuid.replace("-", "")
    tags = [m.tag for m in xcl.memories]
    # IP_LAYOUT gives each CU its index, control protocol and (in new files) "kernel:instance".
    layout = {}
    for ip in xcl.ips:
        if ip.type != "kernel":
            continue
        # Old files name the CU by its kernel only ("vector_add"): its metadata instance.
        layout[xcl.cu_instance(ip)] = ip
    result = {}
    for k in xcl.kernels:
        ranges = [p.range for p in k.ports if p.mode == "slave"]
        directions = {"read_only": "input", "write_only": "output"}
        port_modes = {p.name: directions.get(p.mode) for p in k.ports}
        instances = k.instances or []
        for inst in instances:
            ip = layout.get(inst.name) or layout.get(k.name)
            control = ip.control if ip is not None else "ap_ctrl_hs"
            registers = {} if control == "ap_ctrl_none" else {"CTRL": _ctrl_register(control)}
            streams = {}
            for a in k.args:
                if a.kind == "stream":
                    banks = xcl.memories_of(ip.index, a.index) if ip is not None else []
                    streams[a.name] = {
                        "id": a.index,
                        "type": a.type,
                        "direction": port_modes.get(a.port),
                        # The MEM_TOPOLOGY tag of its stream connection, as PYNQ records it.
                        "stream_id": tags[banks[-1]] if banks else None,
                    }
                    continue
                reg = {
                    "address_offset": a.offset,
                    "access": "read-write",
                    "size": a.size * 8,
                    "host_size": a.host_size,
                    "description": "OpenCL Argument Register",
                    "type": a.type,
                    "id": a.index,
                }
                if ip is not None:
                    banks = xcl.memories_of(ip.index, a.index)
                    if banks:
                        reg["memory"] = tags[banks[-1]]
                        if len(banks) > 1:
                            reg["MBG"] = [tags[b] for b in banks]
                registers[a.name] = reg
            entry = {
                "phys_addr": ip.base_address if ip is not None else inst.base_address,
                "addr_range": max(ranges) if ranges else 0,
                "type": k.vlnv,
                "hw_control_protocol": control,
                "fullpath": inst.name,
                "registers": registers,
                "streams": streams,
                "mem_id": None,
                "state": None,
                "interrupts": {},
                "gpio": {},
                "xclbin_uuid": uuid,
                "cu_name": f"{k.name}:{inst.name}",
            }
            if ip is not None:
                entry["index"] = ip.index
            result[inst.name] = entry
    for i, entry in enumerate(sorted(result.values(), key=lambda e: e["phys_addr"])):
        entry["cu_index"] = i
    return dict(sorted(result.items()))


def mem_dict(xcl):
    """PYNQ's ``mem_dict``: one entry per MEM_TOPOLOGY bank, by raw tag.

    Returns
    -------
    dict
        ``{tag: {raw_type, used, base_address, size, type, streaming, idx, tag}}`` (streaming
        connections carry ``flow_id`` and ``route_id`` instead of address and size).
    """
    result = {}
    for m in xcl.memories:
        raw = m.raw_type
        entry = {"raw_type": raw, "used": int(m.used)}
        if raw == 9:
            entry["flow_id"] = m.base_address
            entry["route_id"] = m.size_bytes // 1024
        else:
            entry["base_address"] = m.base_address
            entry["size"] = m.size_bytes
        entry.update(
            type=_MEMORY_TYPE_NAMES.get(raw, f"type {raw}"),
            streaming=raw == 9,
            idx=m.index,
            tag=m.tag,
        )
        result[m.tag] = entry
    return result


def clock_dict(xcl):
    """PYNQ's ``clock_dict``: ``{"clock<i>": {name, frequency, type}}``, ordered by clock type."""
    result = {}
    ordered = sorted(xcl.clocks, key=lambda c: _CLOCK_ORDER.index(c.type.upper()))
    for i, c in enumerate(ordered):
        result[f"clock{i}"] = {"name": c.name, "frequency": c.frequency_mhz, "type": c.type.upper()}
    return result


class XclBin:
    """The description of an xclbin file, as PYNQ's ``XclBin`` parser gives it.

    Parameters
    ----------
    filename : str
        Path of an xclbin or awsxclbin.

    Attributes
    ----------
    ip_dict, mem_dict, clock_dict : dict
        See :func:`ip_dict`, :func:`mem_dict`, :func:`clock_dict`.
    xclbin : fpyga._core.xclbin
        The parsed file (uuid, target, agfi, platform, sections).
    """

    def __init__(self, filename="", xclbin_data=None):
        if xclbin_data is not None:
            self.xclbin = _core.xclbin.parse(bytes(xclbin_data), filename or "<memory>")
        else:
            self.xclbin = _core.xclbin.read(str(filename))
        self.ip_dict = ip_dict(self.xclbin)
        self.mem_dict = mem_dict(self.xclbin)
        self.clock_dict = clock_dict(self.xclbin)
        self.gpio_dict = {}
        self.interrupt_controllers = {}
        self.interrupt_pins = {}
        self.hierarchy_dict = {}
