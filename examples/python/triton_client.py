"""Calling a network served by `fpyga serve` with tritonclient, as CMS SONIC or a coffea analysis
would (docs/serve.md).

    fpyga serve --model-repository models/ --grpc-port 8001 &
    python examples/python/triton_client.py --url 127.0.0.1:8001 --model muon

Without --url it starts a server itself on a free loopback port from --repository (or builds the
tests' small network into a temporary repository when hls4ml is installed).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient


def run(url: str, model: str, rows: int) -> None:
    client = grpcclient.InferenceServerClient(url)
    assert client.is_server_live(), f"no server at {url}"
    meta = client.get_model_metadata(model, as_json=True)
    config = client.get_model_config(model, as_json=True)["config"]
    inp, out = meta["inputs"][0], meta["outputs"][0]
    # As coffea does: the batch size from the model's configuration.
    preferred = config.get("dynamic_batching", {}).get("preferred_batch_size")
    batch = int(preferred[0]) if preferred else int(config.get("max_batch_size", rows) or 1)
    n_in = int(np.prod([int(d) for d in inp["shape"][1:]]))
    x = np.random.default_rng(0).normal(0, 2, (rows, n_in)).astype(np.float32)
    ys = []
    for start in range(0, rows, batch):
        chunk = x[start:start + batch]
        t = grpcclient.InferInput(inp["name"], list(chunk.shape), "FP32")
        t.set_data_from_numpy(chunk)
        ys.append(client.infer(model, [t]).as_numpy(out["name"]))
    y = np.concatenate(ys)
    print(f"{model}: {rows} samples in batches of {batch} -> {y.shape}, first row {y[0]}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", help="host:port of a running fpyga serve (gRPC)")
    p.add_argument("--repository", type=Path, help="model repository to serve when --url is not given")
    p.add_argument("--model", default="muon")
    p.add_argument("--rows", type=int, default=1000)
    a = p.parse_args(argv)
    if a.url:
        run(a.url, a.model, a.rows)
        return 0
    import fpyga.serve

    with tempfile.TemporaryDirectory() as tmp:
        repo = a.repository
        if repo is None:
            sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "python"))
            import hls4ml_networks as nets
            import fpyga.hls4ml

            hls_model = nets.convert(nets.batchnorm(Path(tmp) / "keras"), Path(tmp) / "prj")
            xclbin = fpyga.hls4ml.build(hls_model, Path(tmp) / "muon.xclbin", compute_units=2)
            repo = fpyga.serve.write_repository(Path(tmp) / "repo", {a.model: xclbin})
        with fpyga.serve.start(repo) as server:
            run(server.grpc_url, a.model, a.rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
