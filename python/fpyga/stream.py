"""Kernel-to-kernel streams of an overlay, shaped like PYNQ 3.0.1's ``XrtStream``.

A stream made by v++'s ``stream_connect`` (``sc=krnl_a_1.out:krnl_b_1.in:depth``) is a
MEM_TOPOLOGY entry of type STREAMING_CONNECTION (tag ``dc_0``, ``dc_1``...) to which CONNECTIVITY
maps the producer's and the consumer's stream arguments. It is no memory: nothing can be
allocated in it, and the host never passes it to a kernel.
"""

from __future__ import annotations

__all__ = ["FreeRunningIP", "Stream", "streams_of"]


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
    depth : int
        FIFO depth in elements (fpyga's ``fpyga_streams``; 16 for files that do not record it).
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


def streams_of(xcl):
    """``({tag: Stream}, {(instance, arg): tag})`` for the kernel-to-kernel streams of ``xcl`` (a
    ``_core.xclbin``), from the C++ core's ``fpyga::stream_layout`` (ValueError naming the ports
    for a stream design that cannot run)."""
    layout = xcl.stream_layout()
    streams = {c["tag"]: Stream(c["tag"], c["memory_index"], c["source"], c["sink"], c["depth"])
               for c in layout["connections"]}
    tags = [c["tag"] for c in layout["connections"]]
    ports = {(p["instance"], p["arg"]): tags[p["connection"]]
             for p in layout["ports"] if p["connection"] is not None}
    return streams, ports
