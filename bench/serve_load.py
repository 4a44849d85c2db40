"""Load generator for `fpyga serve` (issue 15), on tritonclient's asyncio gRPC API, traffic to
127.0.0.1 only, bounded in requests and time. One run reports:

1. requests/s and p50/p99 latency of 1-sample requests at 1, 8 and 64 concurrent clients, with
   dynamic batching on and off;
2. the server's throughput at large batches as a ratio to in-process `Model.predict` on the same
   kind of device (target >= 0.8);
3. the per-request overhead: the server's latency for one sample at one client minus in-process
   `Model.predict` of one sample.

    python bench/serve_load.py [--seconds 3] [--max-requests 20000] [--batch 4096]

It builds the tests' batchnorm network with fpyga.hls4ml.build (hls4ml needed) unless --xclbin
names a network xclbin.
"""

from __future__ import annotations

import argparse
import asyncio
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


async def closed_loop(url, model, in_name, x, clients, seconds, max_requests):
    """`clients` coroutines, each sending one request after another until the time or the
    request budget is spent. Returns (requests/s, latencies in s)."""
    import tritonclient.grpc.aio as aio

    conns = [aio.InferenceServerClient(url) for _ in range(min(clients, 8))]
    lat: list[float] = []
    budget = [max_requests]
    stop_at = time.perf_counter() + seconds

    async def one(i):
        c = conns[i % len(conns)]
        inp = aio.InferInput(in_name, list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        while time.perf_counter() < stop_at and budget[0] > 0:
            budget[0] -= 1
            t0 = time.perf_counter()
            await c.infer(model, [inp], client_timeout=60)
            lat.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*[one(i) for i in range(clients)])
    elapsed = time.perf_counter() - t0
    for c in conns:
        await c.close()
    return len(lat) / elapsed, np.array(lat)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--xclbin", type=Path)
    p.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    p.add_argument("--max-requests", type=int, default=20000, help="per measurement")
    p.add_argument("--batch", type=int, default=4096, help="rows per request for the throughput ratio")
    p.add_argument("--delay-us", type=int, default=200, help="max_queue_delay with batching on")
    a = p.parse_args(argv)

    import fpyga.hls4ml
    import fpyga.serve

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        xclbin = a.xclbin or build_network(tmp)
        mb = max(a.batch, 64)
        # One device per model (3 models, 3 devices), so every figure is per device.
        repo = fpyga.serve.write_repository(tmp / "repo", {
            "on": (xclbin, ON.format(mb=mb, delay=a.delay_us)), "off": (xclbin, OFF.format(mb=mb)),
            "big": (xclbin, OFF.format(mb=mb))})
        model = fpyga.hls4ml.Model(xclbin, device="emu")
        n_in = int(np.prod(model.info["inputs"][0]["shape"]))
        rng = np.random.default_rng(0)
        one = rng.normal(0, 2, (1, n_in)).astype(np.float32)
        big = rng.normal(0, 2, (a.batch, n_in)).astype(np.float32)
        env = {"FPYGA_EMU_DEVICES": "3"}
        with fpyga.serve.start(repo, devices=["emu:0", "emu:1", "emu:2"], env=env, http_port=-1,
                               metrics_port=-1) as server:
            import tritonclient.grpc as grpcclient

            in_name = grpcclient.InferenceServerClient(server.grpc_url).get_model_metadata(
                "on", as_json=True)["inputs"][0]["name"]
            print(f"server {server.grpc_url}, network {xclbin.name}, {model.compute_units} CUs per device")
            print("\n1-sample requests (closed loop):")
            print(f"{'batching':>9} {'clients':>8} {'req/s':>10} {'p50 us':>9} {'p99 us':>9}")
            for name in ("on", "off"):
                for clients in (1, 8, 64):
                    rps, lat = asyncio.run(closed_loop(server.grpc_url, name, in_name, one, clients,
                                                       a.seconds, a.max_requests))
                    print(f"{name:>9} {clients:>8} {rps:>10.0f} {np.percentile(lat, 50) * 1e6:>9.0f} "
                          f"{np.percentile(lat, 99) * 1e6:>9.0f}")
                    if name == "off" and clients == 1:
                        p50_one = np.percentile(lat, 50)

            # Large batches on one device: 2 clients, so one request's transfer overlaps the
            # other's run, against in-process predict on one device of the same kind.
            rps, lat = asyncio.run(closed_loop(server.grpc_url, "big", in_name, big, 2, a.seconds,
                                               a.max_requests))
            served = rps * a.batch
            reps, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < a.seconds and reps < a.max_requests:
                model.predict(big)
                reps += 1
            local = reps * a.batch / (time.perf_counter() - t0)
            print(f"\nbatches of {a.batch} (2 clients, one device): served {served:,.0f} samples/s, "
                  f"in-process Model.predict {local:,.0f} samples/s, ratio {served / local:.2f}")

            t = []
            for _ in range(min(2000, a.max_requests)):
                t0 = time.perf_counter()
                model.predict(one)
                t.append(time.perf_counter() - t0)
            local_one = float(np.median(t))
            print(f"per-request overhead (1 sample, 1 client, batching off, p50): server {p50_one * 1e6:.0f} us - "
                  f"in-process predict {local_one * 1e6:.0f} us = {(p50_one - local_one) * 1e6:.0f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
