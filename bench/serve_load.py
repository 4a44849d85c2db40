"""Load generator for `fpyga serve` (issue 15), on tritonclient's asyncio gRPC API, traffic to
127.0.0.1 only, bounded in requests and time. One run reports:

1. requests/s and p50/p99 latency of 1-sample requests at 1, 8 and 64 concurrent clients, with
   dynamic batching on and off, and the CPU time each request costs the server and the client;
2. the per-request overhead against a model whose kernels return at once (the same tensors,
   built with fpyga.serve.build_null_network): its 1-sample latency is all protocol, client and
   host runtime; and the same with a lean client (tritonclient's gRPC stub, request built once);
3. the server's throughput at large batches (4096, 16384, 65536 rows) as a ratio to in-process
   `Model.predict` on a device of the same kind with the same compute units, in alternating
   rounds (so a change of machine load hits both sides), with the CPU time per sample of server,
   client and in-process predict; and one size over HTTP (binary tensors).

    python bench/serve_load.py [--seconds 2] [--max-requests 20000] [--batches 4096,16384,65536]

It builds the tests' batchnorm network with fpyga.hls4ml.build (hls4ml needed) unless --xclbin
names a network xclbin. On emu the "device" is the host's own CPU: a served batch's kernels, the
server's protocol work and the client compete for the same cores, which in-process predict does
not share with anyone; the CPU columns show what each side costs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ON = "max_batch_size: {mb}\ndynamic_batching {{ max_queue_delay_microseconds: {delay} }}\n"
OFF = "max_batch_size: {mb}\n"


def build_network(tmp: Path) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
    import hls4ml_networks as nets

    import fpyga.hls4ml

    hls_model = nets.convert(nets.batchnorm(tmp / "keras"), tmp / "prj")
    return fpyga.hls4ml.build(hls_model, tmp / "bn.xclbin", compute_units=2)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


class Meter:
    """Wall time and the CPU time of the server process and of this (client) process."""

    def __init__(self, server_pid: int):
        self.pid = server_pid

    def __enter__(self):
        self.t, self.s, self.c = time.perf_counter(), cpu_seconds(self.pid), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t
        self.server = cpu_seconds(self.pid) - self.s
        self.client = time.process_time() - self.c


def own_connection(aio, url, protocol):
    """A client with a connection of its own, as a client in another process has: gRPC channels
    of one process with the same arguments otherwise share one TCP connection (gRPC's global
    subchannel pool), which would serialise every client's transfers through it."""
    if protocol != "grpc":
        return aio.InferenceServerClient(url)  # an aiohttp session (its own connections) each
    from tritonclient.grpc import KeepAliveOptions

    ka = KeepAliveOptions()
    args = [("grpc.max_send_message_length", 2**31 - 1), ("grpc.max_receive_message_length", 2**31 - 1),
            ("grpc.keepalive_time_ms", ka.keepalive_time_ms),
            ("grpc.keepalive_timeout_ms", ka.keepalive_timeout_ms),
            ("grpc.keepalive_permit_without_calls", ka.keepalive_permit_without_calls),
            ("grpc.http2.max_pings_without_data", ka.http2_max_pings_without_data),
            ("grpc.use_local_subchannel_pool", 1)]
    return aio.InferenceServerClient(url, channel_args=args)


async def closed_loop(url, model, in_name, x, clients, seconds, max_requests, protocol="grpc"):
    """`clients` coroutines, each sending one request after another until the time or the
    request budget is spent. Returns (requests/s, latencies in s)."""
    if protocol == "grpc":
        import tritonclient.grpc.aio as aio
    else:
        import tritonclient.http.aio as aio

    conns = [own_connection(aio, url, protocol) for _ in range(min(clients, 8))]
    lat: list[float] = []
    budget = [max_requests]
    stop_at = time.perf_counter() + seconds

    async def one(i):
        c = conns[i % len(conns)]
        inp = aio.InferInput(in_name, list(x.shape), "FP32")
        if protocol == "grpc":
            inp.set_data_from_numpy(x)
            kw = {"client_timeout": 60}
        else:
            inp.set_data_from_numpy(x, binary_data=True)
            kw = {}
        while time.perf_counter() < stop_at and budget[0] > 0:
            budget[0] -= 1
            t0 = time.perf_counter()
            await c.infer(model, [inp], **kw)
            lat.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*[one(i) for i in range(clients)])
    elapsed = time.perf_counter() - t0
    for c in conns:
        await c.close()
    return len(lat) / elapsed, np.array(lat)


def lean_loop(url, model, in_name, x, seconds, max_requests):
    """One client on tritonclient's generated gRPC stub with the request serialized once: what
    remains of the 1-sample latency with a client that does almost nothing per request."""
    import grpc
    from tritonclient.grpc import service_pb2

    req = service_pb2.ModelInferRequest(model_name=model)
    req.inputs.add(name=in_name, datatype="FP32", shape=list(x.shape))
    req.raw_input_contents.append(x.tobytes())
    body = req.SerializeToString()
    lat = []
    with grpc.insecure_channel(url) as ch:
        call = ch.unary_unary("/inference.GRPCInferenceService/ModelInfer")
        stop_at = time.perf_counter() + seconds
        while time.perf_counter() < stop_at and len(lat) < max_requests:
            t0 = time.perf_counter()
            call(body, timeout=60)
            lat.append(time.perf_counter() - t0)
    return np.array(lat)


def local_loop(model, x, seconds, max_requests):
    """In-process Model.predict for `seconds`: (samples/s, CPU seconds per sample)."""
    reps, c0, t0 = 0, time.process_time(), time.perf_counter()
    while time.perf_counter() - t0 < seconds and reps < max_requests:
        model.predict(x)
        reps += 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return reps * len(x) / wall, cpu / (reps * len(x))


def us(v) -> str:
    return f"{v * 1e6:.0f}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--xclbin", type=Path)
    p.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    p.add_argument("--max-requests", type=int, default=20000, help="per measurement")
    p.add_argument("--batches", default="4096,16384,65536", help="rows per request for the throughput ratio")
    p.add_argument("--large-clients", type=int, default=4,
                   help="requests in flight for the large-batch throughput (each its own connection)")
    p.add_argument("--rounds", type=int, default=3, help="alternating served/in-process rounds per batch size")
    p.add_argument("--delay-us", type=int, default=200, help="max_queue_delay with batching on")
    a = p.parse_args(argv)
    batches = [int(b) for b in a.batches.split(",")]

    # Two emu devices in this process: the network on one, the null network on the other.
    os.environ["FPYGA_EMU_DEVICES"] = "2"
    import fpyga.hls4ml
    import fpyga.serve

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        xclbin = a.xclbin or build_network(tmp)
        null = fpyga.serve.build_null_network(xclbin, tmp / "null.xclbin", work_dir=tmp / "null")
        mb = max(max(batches), 64)
        # One device per model (4 models, 4 devices), so every figure is per device.
        repo = fpyga.serve.write_repository(tmp / "repo", {
            "on": (xclbin, ON.format(mb=mb, delay=a.delay_us)), "off": (xclbin, OFF.format(mb=mb)),
            "big": (xclbin, OFF.format(mb=mb)), "null": (null, OFF.format(mb=mb))})
        model = fpyga.hls4ml.Model(xclbin, device="emu:0")
        null_model = fpyga.hls4ml.Model(null, device="emu:1")
        n_in = int(np.prod(model.info["inputs"][0]["shape"]))
        rng = np.random.default_rng(0)
        one = rng.normal(0, 2, (1, n_in)).astype(np.float32)
        env = {"FPYGA_EMU_DEVICES": "4"}
        largest = max(batches) * n_in * 4 + (1 << 20)
        with fpyga.serve.start(repo, devices=["emu:0", "emu:1", "emu:2", "emu:3"], env=env,
                               metrics_port=-1,
                               extra_args=["--max-request-bytes", str(max(largest, 64 << 20))]) as server:
            import tritonclient.grpc as grpcclient

            pid = server.process.pid
            in_name = grpcclient.InferenceServerClient(server.grpc_url).get_model_metadata(
                "on", as_json=True)["inputs"][0]["name"]
            print(f"server {server.grpc_url}, network {xclbin.name}, {model.compute_units} CUs per emu device, "
                  f"{os.cpu_count()} cores, {load()}")
            print("\n1-sample requests (closed loop, tritonclient.grpc.aio):")
            print(f"{'batching':>9} {'clients':>8} {'req/s':>8} {'p50 us':>7} {'p99 us':>7} "
                  f"{'server CPU us/req':>18} {'client CPU us/req':>18}  load")
            p50 = {}
            for name in ("on", "off", "null"):
                for clients in ((1,) if name == "null" else (1, 8, 64)):
                    with Meter(pid) as m:
                        rps, lat = asyncio.run(closed_loop(server.grpc_url, name, in_name, one, clients,
                                                           a.seconds, a.max_requests))
                    n = len(lat)
                    label = "off, null" if name == "null" else name
                    print(f"{label:>9} {clients:>8} {rps:>8.0f} {us(np.percentile(lat, 50)):>7} "
                          f"{us(np.percentile(lat, 99)):>7} {us(m.server / n):>18} {us(m.client / n):>18}  {load()}")
                    p50[name, clients] = np.percentile(lat, 50)
            with Meter(pid) as m:
                lat = lean_loop(server.grpc_url, "null", in_name, one, a.seconds, a.max_requests)
            p50_lean = np.percentile(lat, 50)
            print(f"{'off, null':>9} {1:>8} {len(lat) / m.wall:>8.0f} {us(p50_lean):>7} {us(np.percentile(lat, 99)):>7} "
                  f"{us(m.server / len(lat)):>18} {us(m.client / len(lat)):>18}  {load()}  (lean client: "
                  "gRPC stub, request serialized once)")

            def median_one(mdl):
                t = []
                for _ in range(min(2000, a.max_requests)):
                    t0 = time.perf_counter()
                    mdl.predict(one)
                    t.append(time.perf_counter() - t0)
                return float(np.median(t))

            local_one, local_null = median_one(model), median_one(null_model)
            print(f"\nper-request overhead (1 sample, 1 client, batching off, p50):\n"
                  f"  null network served {us(p50['null', 1])} us (lean client {us(p50_lean)} us); "
                  f"in-process predict of the null network {local_null * 1e6:.1f} us\n"
                  f"  network served {us(p50['off', 1])} us - null network served {us(p50['null', 1])} us = "
                  f"{(p50['off', 1] - p50['null', 1]) * 1e6:.0f} us (in-process: network {local_one * 1e6:.1f} us, "
                  f"null {local_null * 1e6:.1f} us)")

            # Large batches on one device: several clients, so while the device runs one
            # request's batch the server's threads receive and convert the next ones and send
            # back the last; against in-process predict on one emu device with the same CUs, in
            # other's run, against in-process predict on one emu device with the same CUs, in
            # alternating rounds.
            print(f"\nlarge batches, one device ({model.compute_units} CUs), {a.large_clients} clients, {a.rounds} alternating "
                  "rounds each (median ratio):")
            print(f"{'rows':>6} {'proto':>5} {'served M/s':>10} {'local M/s':>9} {'ratio':>5} "
                  f"{'server ns/sample':>16} {'client ns/sample':>16} {'local ns/sample':>15}  load")
            sizes = [(b, "grpc") for b in batches] + [(batches[len(batches) // 2], "http")]
            for rows, proto in sizes:
                x = rng.normal(0, 2, (rows, n_in)).astype(np.float32)
                url = server.grpc_url if proto == "grpc" else server.http_url
                served, local, ratios, s_cpu, c_cpu, l_cpu = [], [], [], [], [], []
                for _ in range(a.rounds):
                    with Meter(pid) as m:
                        rps, lat = asyncio.run(closed_loop(url, "big", in_name, x, a.large_clients, a.seconds / a.rounds,
                                                           a.max_requests, protocol=proto))
                    samples = len(lat) * rows
                    served.append(rps * rows)
                    s_cpu.append(m.server / samples)
                    c_cpu.append(m.client / samples)
                    lt, lc = local_loop(model, x, a.seconds / a.rounds, a.max_requests)
                    local.append(lt)
                    l_cpu.append(lc)
                    ratios.append(served[-1] / lt)
                print(f"{rows:>6} {proto:>5} {np.median(served) / 1e6:>10.2f} {np.median(local) / 1e6:>9.2f} "
                      f"{np.median(ratios):>5.2f} {np.median(s_cpu) * 1e9:>16.0f} {np.median(c_cpu) * 1e9:>16.0f} "
                      f"{np.median(l_cpu) * 1e9:>15.0f}  {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
