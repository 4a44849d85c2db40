"""Kernel-to-kernel streams of an overlay, shaped like PYNQ 3.0.1's ``XrtStream``.

A stream made by v++'s ``stream_connect`` (``sc=krnl_a_1.out:krnl_b_1.in:depth``) is a
MEM_TOPOLOGY entry of type STREAMING_CONNECTION (tag ``dc_0``, ``dc_1``...) to which CONNECTIVITY
maps the producer's and the consumer's stream arguments. It is no memory: nothing can be
allocated in it, and the host never passes it to a kernel.
"""

from __future__ import annotations

import json

__all__ = ["FreeRunningIP", "Stream", "streams_of"]

_DIRECTIONS = {"read_only": "input", "write_only": "output"}


class Stream:
    """One kernel-to-kernel stream (``ol.dc_0``, ``kernel.streams["out"]``).

    Attributes
    ----------
    tag : str
        Its MEM_TOPOLOGY tag (``dc_0``).
    idx : int
        Its MEM_TOPOLOGY index.
    source : str
        The producer, ``"<compute unit>.<argument>"`` (the kernel writes it).
    sink : str
        The consumer, ``"<compute unit>.<argument>"`` (the kernel reads it).
    depth : int or None
        FIFO depth in elements, when the xclbin records it (fpyga's ``fpyga_streams``).
    """

    def __init__(self, tag, idx, source, sink, depth=None):
        self.tag = tag
        self.idx = idx
        self.source = source
        self.sink = sink
        self.depth = depth

    @property
    def source_ip(self):
        return self.source.partition(".")[0]

    @property
    def source_port(self):
        return self.source.partition(".")[2]

    @property
    def sink_ip(self):
        return self.sink.partition(".")[0]

    @property
    def sink_port(self):
        return self.sink.partition(".")[2]

    def allocate(self, *args, **kwargs):
        raise TypeError(f"stream '{self.tag}' ({self.source} -> {self.sink}) is a kernel-to-kernel "
                        "stream, not a memory: nothing can be allocated in it")

    def __repr__(self):
        depth = f", depth {self.depth}" if self.depth is not None else ""
        return f"XrtStream(source={self.source}, sink={self.sink}{depth})"


class FreeRunningIP:
    """A free-running compute unit (``#pragma HLS INTERFACE ap_ctrl_none port=return``): it has
    no control registers and runs from load to unload, fed by its streams; the host neither
    calls nor starts it (XRT, too, opens no kernel for it).

    Attributes
    ----------
    description : dict
        Its ``ip_dict`` entry.
    streams : dict
        ``{argument: Stream}``.
    """

    def __init__(self, name, description, streams=None):
        self.name = name
        self.description = description
        self.streams = streams or {}

    def _refuse(self, *args, **kwargs):
        raise TypeError(f"'{self.name}' is a free-running kernel (ap_ctrl_none): it runs from load "
                        "to unload and the host does not call or start it")

    call = start = _refuse

    def __repr__(self):
        return f"<fpyga.FreeRunningIP {self.name} (ap_ctrl_none), streams {sorted(self.streams)}>"


def streams_of(xcl, depths=None):
    """``{tag: Stream}`` for every STREAMING_CONNECTION entry of ``xcl`` (a ``_core.xclbin``)
    that joins two stream arguments, and ``{(instance, arg): tag}`` for those arguments."""
    depths = depths or {}
    ports = {}
    cu_of = {}
    for ip in xcl.ips:
        if ip.type == "kernel":
            cu_of[ip.index] = (ip.kernel_name, xcl.cu_instance(ip) if hasattr(xcl, "cu_instance")
                               else ip.instance_name)
    kernels = {k.name: k for k in xcl.kernels}
    ends = {}
    for ip_index, (kname, inst) in cu_of.items():
        k = kernels.get(kname)
        if k is None:
            continue
        modes = {p.name: _DIRECTIONS.get(p.mode) for p in k.ports}
        for a in k.args:
            if a.kind != "stream":
                continue
            for m in xcl.memories_of(ip_index, a.index):
                ends.setdefault(m, []).append((f"{inst}.{a.name}", modes.get(a.port)))
                ports[(inst, a.name)] = m
    result = {}
    for m in xcl.memories:
        if m.raw_type != 9:
            continue
        src = next((n for n, d in ends.get(m.index, []) if d == "output"), None)
        dst = next((n for n, d in ends.get(m.index, []) if d == "input"), None)
        if src and dst:
            result[m.tag] = Stream(m.tag, m.index, src, dst, depths.get(m.tag))
    by_index = {s.idx: t for t, s in result.items()}
    return result, {key: by_index[m] for key, m in ports.items() if m in by_index}


def depths_from_metadata(text):
    """``{tag: depth}`` from the ``fpyga_streams`` JSON text (empty for other text)."""
    try:
        j = json.loads(text)
        return {c["tag"]: int(c["depth"]) for c in j.get("connections", [])}
    except (ValueError, TypeError, KeyError, AttributeError):
        return {}
