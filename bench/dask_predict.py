"""fpyga.dask.predict on a LocalCluster: 1 worker against 2, and the cost of a Dask chunk.

    .venv/bin/python bench/dask_predict.py [--model muon] [--samples 400000] [--chunk 20000] [--repeats 5] [--pin]

One process drives two LocalClusters side by side (worker processes, one thread each, an emu
device each): A with 1 worker, B with 2. The network is built with one compute unit, so that a
worker keeps about one core busy. The input is generated on the workers (``da.random``, the same
numbers on both clusters) and persisted there before any timing, so the times are inference and
Dask's scheduling, not the transfer of the input from this process. In each repeat, A and B take
turns (these machines are noisy); medians over the repeats:

- throughput of A and B: samples per second of ``predict(net, X).persist()`` over all chunks;
  their ratio is the scaling from 1 to 2 workers (target of issue 16: >= 1.7x on 2 cores);
- per chunk: in-process ``Model.predict`` of one chunk; A's wall time per chunk in the whole
  computation (the difference is what Dask adds to a chunk in a stream of them); the round
  trip of a computation of one chunk (``predict(net, X1).compute()``: graph, scheduling, the
  result's transfer back); and the CPU time of a chunk in process against that of A's worker
  per chunk (which a busy machine does not inflate as it does wall times).

The results of B are checked against in-process ``Model.predict`` on the same data. The
machine's load average and the cores the workers actually got (their CPU time over the wall
time) are printed beside the throughputs: on a shared machine they say what the ratio can be.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def pin_process(core: int) -> list:
    """Pins every thread of this process, and those it starts later, to one core."""
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), {core})
        except ProcessLookupError:  # a thread that ended meanwhile
            pass
    return sorted(os.sched_getaffinity(0))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="muon", choices=["muon", "iris"])
    p.add_argument("--samples", type=int, default=400000)
    p.add_argument("--chunk", type=int, default=20000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--pin", action="store_true",
                   help="pin each worker process (all its threads) to a core of its own, as a batch "
                        "system gives each worker its cores; without it the workers share all cores")
    args = p.parse_args(argv)

    import dask.array as da
    import distributed

    import fpyga
    import fpyga.dask
    import fpyga.hls4ml
    from fpyga.demo.convert import convert
    from fpyga.demo.model import models_dir

    work = Path(tempfile.mkdtemp(prefix="fpyga-bench-dask-"))
    hls_model = convert(models_dir() / args.model, work / "prj")
    xclbin = fpyga.hls4ml.build(hls_model, work / f"{args.model}.xclbin", compute_units=1)
    local = fpyga.hls4ml.Model(xclbin, device=fpyga.Device.open("emu"))

    def cluster(n_workers, tag):
        env = {"FPYGA_EMU_DEVICES": "2", "FPYGA_LOCK_DIR": str(work / f"locks-{tag}"),
               "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
        c = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                     dashboard_address=":0", env=env, silence_logs=40)
        client = distributed.Client(c)
        if args.pin:
            cores = sorted(os.sched_getaffinity(0))
            for i, address in enumerate(sorted(client.scheduler_info()["workers"])):
                client.run(pin_process, cores[i % len(cores)], workers=[address])
        return c, client

    (ca, a), (cb, b) = cluster(1, "a"), cluster(2, "b")
    try:
        nets = {}
        data = {}
        one = {}
        for name, client in (("A", a), ("B", b)):
            nets[name] = fpyga.dask.register(client, xclbin.read_bytes())
            rng = da.random.default_rng(1)
            X = rng.normal(0, 1.5, (args.samples, local.n_inputs), chunks=(args.chunk, local.n_inputs))
            data[name] = client.persist(X.astype(np.float32))
            one[name] = client.persist(data[name][: args.chunk])
            distributed.wait([data[name], one[name]])

        # the results are exact, and warm-up
        x = a.compute(data["A"]).result()
        want = local.predict(x)
        got = b.compute(fpyga.dask.predict(nets["B"], data["B"])).result()
        assert np.array_equal(got, want), "2 workers' results differ from in-process Model.predict"
        chunk = x[: args.chunk]

        cores = {"A": [], "B": []}
        cpu = {"A": [], "local_chunk": []}

        def run(name, client):
            before = client.run(time.process_time)
            t = time.perf_counter()
            y = client.persist(fpyga.dask.predict(nets[name], data[name]))
            distributed.wait(y)
            wall = time.perf_counter() - t
            after = client.run(time.process_time)
            # the cores the workers had: their CPU time over the wall time (the machine is shared)
            cores[name].append(sum(after[w] - before[w] for w in after) / wall)
            cpu.setdefault(name, []).append(sum(after[w] - before[w] for w in after))
            del y
            return wall

        def round_trip():
            a.compute(fpyga.dask.predict(nets["A"], one["A"])).result()

        load_before = os.getloadavg()[0]
        rows = {"A": [], "B": [], "local_chunk": [], "round_trip": []}
        for r in range(args.repeats):
            order = [("A", a), ("B", b)]
            if r % 2:
                order.reverse()
            for name, client in order:
                rows[name].append(run(name, client))
            rows["local_chunk"].append(float(np.median([timed(lambda: local.predict(chunk)) for _ in range(5)])))
            c = time.process_time()
            local.predict(chunk)
            cpu["local_chunk"].append(time.process_time() - c)
            rows["round_trip"].append(float(np.median([timed(round_trip) for _ in range(5)])))
            print(f"repeat {r + 1}/{args.repeats}: " + ", ".join(f"{k} {v[-1] * 1e3:.1f} ms" for k, v in rows.items()),
                  file=sys.stderr)
        report = {name: fpyga.dask.status(c) for name, c in (("A", a), ("B", b))}
        load_after = os.getloadavg()[0]
    finally:
        for c in (a, b):
            c.close()
        for c in (ca, cb):
            c.close()

    med = {k: float(np.median(v)) for k, v in rows.items()}
    n_chunks = -(-args.samples // args.chunk)
    print(f"\n{args.model}: {local.n_inputs} inputs, {local.n_outputs} outputs, 1 CU per device; "
          f"{'each worker pinned to a core of its own; ' if args.pin else 'workers unpinned; '}"
          f"{args.samples} samples in {n_chunks} chunks of {args.chunk}; {args.repeats} repeats, medians")
    for name in ("A", "B"):
        devices = ", ".join(f"{s['name']}: {'/'.join(s['devices'])}" for s in report[name].values())
        print(f"  {name} ({len(report[name])} worker(s); {devices}): {med[name] * 1e3:8.1f} ms, "
              f"{args.samples / med[name] / 1e6:6.3f} M samples/s, the workers busy on "
              f"{np.median(cores[name]):.2f} cores")
    print(f"  2 workers / 1 worker            {med['A'] / med['B']:.2f}x  (target >= 1.7 on 2 cores; "
          f"{os.cpu_count()} cores here, load average {load_before:.1f} before, {load_after:.1f} after)")
    per_chunk = med["A"] / n_chunks
    print(f"  one chunk in process (Model.predict)       {med['local_chunk'] * 1e3:8.2f} ms")
    print(f"  one chunk in A's stream (wall / chunks)   {per_chunk * 1e3:8.2f} ms  "
          f"(Dask adds {(per_chunk - med['local_chunk']) * 1e3:+.2f} ms, "
          f"{(per_chunk / med['local_chunk'] - 1) * 100:+.1f}%)")
    print(f"  one-chunk computation, round trip         {med['round_trip'] * 1e3:8.2f} ms  "
          f"(+{(med['round_trip'] - med['local_chunk']) * 1e3:.2f} ms)")
    # CPU time does not depend on how busy the machine is: what a chunk costs the worker
    cpu_local = float(np.median(cpu["local_chunk"]))
    cpu_a, cpu_b = (float(np.median(cpu[n])) / n_chunks for n in ("A", "B"))
    print(f"  CPU per chunk: in process {cpu_local * 1e3:.2f} ms, A's worker {cpu_a * 1e3:.2f} ms "
          f"(Dask's worker side adds {(cpu_a - cpu_local) * 1e3:+.2f} ms), B's workers {cpu_b * 1e3:.2f} ms")
    print(f"  (B's CPU per chunk / A's: {cpu_b / cpu_a:.2f}; near 1, two workers do no more work per chunk "
          "than one, so on idle cores the 1 -> 2 scaling is bounded by the cores, not by fpyga.dask)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
