"""fpyga serve (issue 15) with the real tritonclient over gRPC on 127.0.0.1: health, metadata,
configuration and repository index; single and batched inference bit-identical to
fpyga.hls4ml.Model.predict; typed contents; 64 concurrent requests from several clients; every bad
input gets a clear error and the server keeps answering; a full queue; SIGTERM with requests in
flight (all answered, exit 0). The protocol file is checked field by field against
tritonclient's own descriptors."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import tritonclient.grpc as grpcclient  # noqa: E402  (a dependency: missing, the suite fails)
from tritonclient.grpc import service_pb2, service_pb2_grpc  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

import fpyga.hls4ml  # noqa: E402
import fpyga.serve  # noqa: E402
from conftest import REPO, missing_input  # noqa: E402

import hls4ml_networks as nets  # noqa: E402

N_IN = 8  # the batchnorm network: 8 inputs, 4 outputs
SLOW_CONFIG = """
max_batch_size: 64
dynamic_batching { preferred_batch_size: [ 64 ] max_queue_delay_microseconds: 400000 }
"""
SMALL_CONFIG = """
max_batch_size: 8
input [ { name: "x" data_type: TYPE_FP32 dims: [ 8 ] } ]
dynamic_batching { max_queue_delay_microseconds: 2000 }
"""


def _cli():
    try:
        cli = fpyga.serve.find_cli()
    except FileNotFoundError as e:
        missing_input(str(e))
    help_text = subprocess.run([cli, "--help"], capture_output=True, text=True, timeout=30).stdout
    if " serve " not in help_text:
        missing_input(f"{cli} was built without fpyga serve (FPYGA_WITH_SERVE)")
    return cli


@pytest.fixture(scope="session")
def network(tmp_path_factory):
    """The batchnorm network built with fpyga.hls4ml.build (2 CUs) and its reference Model."""
    root = tmp_path_factory.mktemp("serve_net")
    hls_model = nets.convert(nets.batchnorm(root / "keras"), root / "prj")
    xclbin = fpyga.hls4ml.build(hls_model, root / "bn.xclbin", compute_units=2)
    model = fpyga.hls4ml.Model(xclbin, device="emu")
    return xclbin, model


@pytest.fixture(scope="session")
def server(network, tmp_path_factory):
    cli = _cli()
    xclbin, _ = network
    repo = fpyga.serve.write_repository(tmp_path_factory.mktemp("repo"), {
        "bn": xclbin, "small": (xclbin, SMALL_CONFIG)})
    (repo / "broken" / "1").mkdir(parents=True)
    (repo / "broken" / "1" / "model.xclbin").write_bytes(b"not an xclbin")
    with fpyga.serve.start(repo, cli=cli, devices=["emu:0", "emu:1", "emu:2"],
                           env={"FPYGA_EMU_DEVICES": "3"},
                           extra_args=["--max-request-bytes", str(1 << 20)]) as s:
        yield s


@pytest.fixture
def client(server):
    c = grpcclient.InferenceServerClient(server.grpc_url)
    yield c
    c.close()


def _infer(client, x, model="bn", name="input_1", datatype="FP32", **kw):
    inp = grpcclient.InferInput(name, list(x.shape), datatype)
    inp.set_data_from_numpy(x)
    return client.infer(model, [inp], **kw)


def _expect_error(fn, status, *words):
    with pytest.raises(InferenceServerException) as e:
        fn()
    assert e.value.status() == status, (e.value.status(), e.value.message())
    for w in words:
        assert w in e.value.message(), e.value.message()


def test_health_metadata_config_and_index(client, server):
    assert client.is_server_live()
    assert not client.is_server_ready()  # 'broken' did not load
    assert client.is_model_ready("bn") and client.is_model_ready("small")
    assert not client.is_model_ready("broken") and not client.is_model_ready("nope")
    meta = client.get_server_metadata(as_json=True)
    assert meta["name"] == "fpyga" and meta["version"] == fpyga.__version__
    md = client.get_model_metadata("bn", as_json=True)
    assert md["versions"] == ["1"] and md["platform"] == "fpyga"
    assert md["inputs"] == [{"name": "input_1", "datatype": "FP32", "shape": ["-1", "8"]}]
    assert md["outputs"][0]["datatype"] == "FP32" and md["outputs"][0]["shape"] == ["-1", "4"]
    cfg = client.get_model_config("small", as_json=True)["config"]
    assert cfg["max_batch_size"] == 8 and cfg["input"][0]["name"] == "x"
    assert cfg["input"][0]["data_type"] == "TYPE_FP32" and cfg["input"][0]["dims"] == ["8"]
    assert cfg["dynamic_batching"]["max_queue_delay_microseconds"] == "2000"
    index = {m["name"]: m for m in client.get_model_repository_index(as_json=True)["models"]}
    assert index["bn"]["state"] == "READY" and index["bn"]["version"] == "1"
    assert index["broken"]["state"] == "UNAVAILABLE" and "model.xclbin" in index["broken"]["reason"]


def test_single_and_batched_inference_is_bit_identical_to_model_predict(client, network):
    _, model = network
    x = nets.inputs(N_IN, 300, seed=4)
    want = model.predict(x)
    for rows in (1, 37, 300):
        got = _infer(client, x[:rows]).as_numpy(_out_name(client))
        assert got.dtype == np.float32 and got.shape == (rows, 4)
        np.testing.assert_array_equal(got, want[:rows])
    got = _infer(client, x[:8], model="small", name="x").as_numpy(_out_name(client))
    np.testing.assert_array_equal(got, want[:8])


def _out_name(client):
    return client.get_model_metadata("bn", as_json=True)["outputs"][0]["name"]


def test_typed_contents_and_requested_outputs(server, network):
    """fp32_contents instead of raw_input_contents (what some clients send), via the raw stub."""
    import grpc

    _, model = network
    x = nets.inputs(N_IN, 300, seed=5)[-5:]  # rows that saturate or wrap
    with grpc.insecure_channel(server.grpc_url) as ch:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(ch)
        out_name = stub.ModelMetadata(service_pb2.ModelMetadataRequest(name="bn")).outputs[0].name
        req = service_pb2.ModelInferRequest(model_name="bn", id="r-1")
        t = req.inputs.add(name="input_1", datatype="FP32", shape=[5, 8])
        t.contents.fp32_contents.extend(x.ravel().tolist())
        req.outputs.add(name=out_name)
        r = stub.ModelInfer(req, timeout=30)
    assert r.id == "r-1" and r.model_version == "1"
    assert list(r.outputs[0].shape) == [5, 4] and r.outputs[0].datatype == "FP32"
    got = np.frombuffer(r.raw_output_contents[0], dtype="<f4").reshape(5, 4)
    np.testing.assert_array_equal(got, model.predict(x))


def test_64_concurrent_requests_from_several_clients(server, network):
    _, model = network
    x = nets.inputs(N_IN, 400, seed=6)
    want = model.predict(x)
    clients = [grpcclient.InferenceServerClient(server.grpc_url) for _ in range(4)]
    out_name = _out_name(clients[0])
    done, results = threading.Semaphore(0), {}

    def callback(key, result, error):
        results[key] = (result, error)
        done.release()

    for i in range(64):
        rows = 1 + (i * 7) % 13
        first = (i * 5) % (len(x) - rows)
        inp = grpcclient.InferInput("input_1", [rows, N_IN], "FP32")
        inp.set_data_from_numpy(x[first:first + rows])
        clients[i % 4].async_infer("bn", [inp], callback=lambda result, error, k=(first, rows): callback(k, result, error),
                                   client_timeout=60)
    for _ in range(64):
        assert done.acquire(timeout=60), "a request got no answer"
    for (first, rows), (result, error) in results.items():
        assert error is None, error
        np.testing.assert_array_equal(result.as_numpy(out_name), want[first:first + rows])
    for c in clients:
        c.close()


def test_bad_inputs_get_clear_errors_and_the_server_keeps_answering(client, server, network):
    import grpc

    _, model = network
    good = nets.inputs(N_IN, 300, seed=7)[-3:]
    out_name = _out_name(client)
    bad = [
        (lambda: _infer(client, good, model="nope"), "StatusCode.NOT_FOUND", "unknown model 'nope'"),
        (lambda: _infer(client, good, model_version="7"), "StatusCode.NOT_FOUND",
         "model 'bn' has no version '7' (versions: 1)"),
        (lambda: _infer(client, good, model="broken"), "StatusCode.UNAVAILABLE", "is not ready"),
        (lambda: _infer(client, good, name="x"), "StatusCode.INVALID_ARGUMENT",
         "unknown input 'x' (the model's input is 'input_1')"),
        (lambda: _infer(client, good[:, :5].copy()), "StatusCode.INVALID_ARGUMENT",
         "input 'input_1' has shape [-1, 8], got [3, 5]"),
        (lambda: _infer(client, good.astype(np.float64), datatype="FP64"), "StatusCode.INVALID_ARGUMENT",
         "input 'input_1' has datatype FP32, got FP64"),
        (lambda: _infer(client, good.astype(np.int32), datatype="INT32"), "StatusCode.INVALID_ARGUMENT",
         "datatype FP32, got INT32"),
        (lambda: _infer(client, nets.inputs(N_IN)[:9], model="small", name="x"), "StatusCode.INVALID_ARGUMENT",
         "a batch of 9 samples is over max_batch_size 8"),
        (lambda: _infer(client, good, outputs=[grpcclient.InferRequestedOutput("nope")]),
         "StatusCode.INVALID_ARGUMENT", "unknown output 'nope'"),
        (lambda: _infer(client, np.zeros((40000, N_IN), np.float32)), "StatusCode.RESOURCE_EXHAUSTED", ""),
    ]
    for fn, status, words in bad:
        _expect_error(fn, status, words)
        assert client.is_server_live()
        np.testing.assert_array_equal(_infer(client, good).as_numpy(out_name), model.predict(good))

    with grpc.insecure_channel(server.grpc_url) as ch:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(ch)
        # raw bytes that do not match the shape
        req = service_pb2.ModelInferRequest(model_name="bn")
        req.inputs.add(name="input_1", datatype="FP32", shape=[3, 8])
        req.raw_input_contents.append(b"\0" * 95)
        with pytest.raises(grpc.RpcError) as e:
            stub.ModelInfer(req, timeout=30)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "holds 95 bytes, its shape needs 96" in e.value.details()
        # no data at all
        req = service_pb2.ModelInferRequest(model_name="bn")
        req.inputs.add(name="input_1", datatype="FP32", shape=[3, 8])
        with pytest.raises(grpc.RpcError) as e:
            stub.ModelInfer(req, timeout=30)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "0 values in contents.fp32_contents, its shape needs 24" in e.value.details()
        # not a protobuf message at all
        raw = ch.unary_unary("/inference.GRPCInferenceService/ModelInfer")
        with pytest.raises(grpc.RpcError) as e:
            raw(b"\xff\xff\xff\xff\x0f", timeout=30)
        assert e.value.code() != grpc.StatusCode.OK
    assert client.is_server_live()
    np.testing.assert_array_equal(_infer(client, good).as_numpy(out_name), model.predict(good))


def test_full_queue_then_sigterm_with_requests_in_flight(network, tmp_path):
    """A model whose batches wait 0.4 s for company: 6 requests wait in its queue (limit 6), a
    7th is refused (RESOURCE_EXHAUSTED); SIGTERM then drains: all 6 are answered, exit 0."""
    cli = _cli()
    xclbin, model = network
    repo = fpyga.serve.write_repository(tmp_path / "repo", {"slow": (xclbin, SLOW_CONFIG)})
    x = nets.inputs(N_IN, 60, seed=8)
    want = model.predict(x)
    s = fpyga.serve.start(repo, cli=cli, devices=["emu"], extra_args=["--max-queue-size", "6"])
    try:
        c = grpcclient.InferenceServerClient(s.grpc_url)
        results, done = {}, threading.Semaphore(0)
        for i in range(6):
            inp = grpcclient.InferInput("input_1", [10, N_IN], "FP32")
            inp.set_data_from_numpy(x[i * 10:(i + 1) * 10])
            c.async_infer("slow", [inp], client_timeout=60,
                          callback=lambda result, error, i=i: (results.__setitem__(i, (result, error)), done.release()))
        time.sleep(0.15)  # all six queued, the batch waiting out its delay
        _expect_error(lambda: _infer(c, x[:1], model="slow"), "StatusCode.RESOURCE_EXHAUSTED", "queue is full")
        s.process.send_signal(15)
        for _ in range(6):
            assert done.acquire(timeout=60)
        for i, (r, e) in results.items():
            assert e is None, e
            got = r.as_numpy(r.get_response().outputs[0].name)
            np.testing.assert_array_equal(got, want[i * 10:(i + 1) * 10])
        assert s.process.wait(60) == 0
        assert any(ev.get("msg") == "draining" for ev in s.events())
        c.close()
    finally:
        s.stop()


def test_proto_matches_tritonclient_descriptors(tmp_path):
    """cpp/serve/proto/kserve_v2.proto declares the protocol's names and numbers: each of its
    fields is the same (name, number, type, label) in tritonclient's own descriptors."""
    from google.protobuf import descriptor_pb2
    from tritonclient.grpc import model_config_pb2

    protoc = shutil.which("protoc")
    if not protoc:
        missing_input("protoc (apt-get install protobuf-compiler)")
    proto = REPO / "cpp" / "serve" / "proto" / "kserve_v2.proto"
    subprocess.run([protoc, f"--proto_path={proto.parent}", f"--descriptor_set_out={tmp_path / 'ds'}",
                    proto.name], check=True, timeout=60)
    fds = descriptor_pb2.FileDescriptorSet.FromString((tmp_path / "ds").read_bytes())
    ours = fds.file[0]
    assert ours.package == "inference"

    def theirs(name):
        return (service_pb2.DESCRIPTOR.message_types_by_name.get(name)
                or model_config_pb2.DESCRIPTOR.message_types_by_name.get(name))

    checked = 0

    def compare(m, t):
        nonlocal checked
        fields = {f.name: f for f in t.fields}
        for f in m.field:
            assert f.name in fields, f"{t.full_name}.{f.name} is not in the protocol"
            g = fields[f.name]
            assert (g.number, g.type) == (f.number, f.type), f"{t.full_name}.{f.name}"
            checked += 1
        for n in m.nested_type:
            if not n.options.map_entry:
                compare(n, t.nested_types_by_name[n.name])

    for m in ours.message_type:
        assert theirs(m.name) is not None, m.name
        compare(m, theirs(m.name))
    service = service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    for method in ours.service[0].method:
        t = service.methods_by_name[method.name]
        assert (method.input_type, method.output_type) == (
            "." + t.input_type.full_name, "." + t.output_type.full_name)
    assert checked > 80


# ---- HTTP/REST v2, Prometheus, asyncio clients ------------------------------------------------

def _http(server):
    import tritonclient.http as httpclient

    return httpclient, httpclient.InferenceServerClient(server.http_url, concurrency=4)


def test_http_health_metadata_and_inference_json_and_binary(server, network):
    httpclient, c = _http(server)
    _, model = network
    assert c.is_server_live() and not c.is_server_ready()
    assert c.is_model_ready("bn") and not c.is_model_ready("broken") and not c.is_model_ready("nope")
    assert c.get_server_metadata()["name"] == "fpyga"
    md = c.get_model_metadata("bn")
    assert md["inputs"] == [{"name": "input_1", "datatype": "FP32", "shape": [-1, 8]}]
    out_name = md["outputs"][0]["name"]
    assert c.get_model_config("small")["max_batch_size"] == 8
    index = {m["name"]: m for m in c.get_model_repository_index()}
    assert index["broken"]["state"] == "UNAVAILABLE" and index["bn"]["state"] == "READY"
    x = nets.inputs(N_IN, 300, seed=9)
    want = model.predict(x)
    for binary in (True, False):
        for rows in (1, 300):
            inp = httpclient.InferInput("input_1", [rows, N_IN], "FP32")
            inp.set_data_from_numpy(x[:rows], binary_data=binary)
            out = httpclient.InferRequestedOutput(out_name, binary_data=binary)
            got = c.infer("bn", [inp], outputs=[out], request_id="h1").as_numpy(out_name)
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, want[:rows])
    c.close()


def test_http_bad_inputs_get_clear_errors_and_the_server_keeps_answering(server, network):
    import http.client

    httpclient, c = _http(server)
    _, model = network
    good = nets.inputs(N_IN, 300, seed=10)[-3:]
    out_name = c.get_model_metadata("bn")["outputs"][0]["name"]

    def infer(x, model_name="bn", name="input_1", datatype="FP32", **kw):
        inp = httpclient.InferInput(name, list(x.shape), datatype)
        inp.set_data_from_numpy(x)
        return c.infer(model_name, [inp], **kw)

    bad = [
        (lambda: infer(good, model_name="nope"), "unknown model 'nope'"),
        (lambda: infer(good, model_version="3"), "has no version '3'"),
        (lambda: infer(good, model_name="broken"), "is not ready"),
        (lambda: infer(good, name="x"), "unknown input 'x'"),
        (lambda: infer(good[:, :4].copy()), "has shape [-1, 8], got [3, 4]"),
        (lambda: infer(good.astype(np.float64), datatype="FP64"), "datatype FP32, got FP64"),
        (lambda: infer(nets.inputs(N_IN)[:9], model_name="small", name="x"), "over max_batch_size 8"),
    ]
    for fn, words in bad:
        with pytest.raises(InferenceServerException) as e:
            fn()
        assert words in e.value.message(), e.value.message()
        np.testing.assert_array_equal(infer(good).as_numpy(out_name), model.predict(good))

    host, port = server.http_url.rsplit(":", 1)

    def post(path, body, headers=None):
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("POST", path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r.status, data

    status, body = post("/v2/models/bn/infer", b"{not json")
    assert status == 400 and b"malformed request JSON" in body
    status, body = post("/v2/models/bn/infer", b'{"inputs": [{"name": "input_1", "shape": [1, 8], '
                        b'"datatype": "FP32", "data": [1, 2, "x", 4, 5, 6, 7, 8]}]}')
    assert status == 400 and b"where FP32 numbers were expected" in body
    status, body = post("/v2/models/bn/infer", b'{"inputs": []}', {"Inference-Header-Content-Length": "999"})
    assert status == 400 and b"is not a length within the" in body
    status, body = post("/v2/models/bn/infer", b"{" + b" " * (2 << 20) + b"}")
    assert status == 413
    status, body = post("/v2/nothing", b"")
    assert status == 404 and b"no such endpoint" in body
    assert c.is_server_live()
    np.testing.assert_array_equal(infer(good).as_numpy(out_name), model.predict(good))
    c.close()


def _metrics(url):
    """The server's Prometheus text from http://url/metrics as {series: value}."""
    import urllib.request

    text = urllib.request.urlopen(f"http://{url}/metrics", timeout=30).read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            values[key] = float(value)
    return values


def test_prometheus_metrics(server, network):
    grpc_c = grpcclient.InferenceServerClient(server.grpc_url)
    _infer(grpc_c, nets.inputs(N_IN)[:5])
    values = _metrics(server.metrics_url)
    bn = 'model="bn",version="1"'
    assert values[f"fpyga_inference_request_success{{{bn}}}"] >= 1
    assert values[f"fpyga_inference_request_failure{{{bn}}}"] >= 0
    assert values[f"fpyga_inference_count{{{bn}}}"] >= 5
    assert values[f'fpyga_batch_size_bucket{{{bn},le="+Inf"}}'] == values[f"fpyga_inference_exec_count{{{bn}}}"]
    assert values[f"fpyga_inference_compute_duration_us{{{bn}}}"] > 0
    assert any(k.startswith('fpyga_device_busy_us{device="emu:') for k in values)
    grpc_c.close()


def test_model_statistics_over_grpc_and_http(server, network):
    """Triton's statistics extension: ModelStatistics and GET /v2/models[/<m>]/stats count each
    request, sample and batch of a model (the same figures over both protocols); every ready
    model without a name; an unknown model is NOT_FOUND."""
    import tritonclient.http as httpclient

    c = grpcclient.InferenceServerClient(server.grpc_url)
    h = httpclient.InferenceServerClient(server.http_url)

    def grpc_stats(**kw):
        return c.get_inference_statistics(as_json=True, **kw)["model_stats"]

    before = grpc_stats(model_name="small")[0]
    x = nets.inputs(N_IN, 300, seed=13)[:5]
    _infer(c, x, model="small", name="x")
    _expect_error(lambda: _infer(c, x[:, :3].copy(), model="small", name="x"), "StatusCode.INVALID_ARGUMENT")
    after = grpc_stats(model_name="small")[0]
    assert after["name"] == "small" and after["version"] == "1"

    def n(d, *path):
        for p in path:
            d = d.get(p, {})
        return int(d or 0)  # proto3 JSON leaves zeros out

    assert n(after, "inference_count") == n(before, "inference_count") + 5
    assert n(after, "execution_count") == n(before, "execution_count") + 1
    assert n(after, "inference_stats", "success", "count") == n(before, "inference_stats", "success", "count") + 1
    assert n(after, "inference_stats", "success", "ns") > n(before, "inference_stats", "success", "ns")
    assert n(after, "inference_stats", "compute_infer", "count") == n(after, "execution_count")
    assert n(after, "inference_stats", "queue", "count") == n(after, "inference_stats", "success", "count")
    assert n(after, "last_inference") / 1000 == pytest.approx(time.time(), abs=600)

    web = h.get_inference_statistics(model_name="small")["model_stats"][0]
    assert web["inference_count"] == n(after, "inference_count")
    assert web["inference_stats"]["success"] == {"count": n(after, "inference_stats", "success", "count"),
                                                 "ns": n(after, "inference_stats", "success", "ns")}
    assert web["inference_stats"]["fail"]["count"] == n(after, "inference_stats", "fail", "count")
    assert {m["name"] for m in grpc_stats()} == {"bn", "small"}
    assert {m["name"] for m in h.get_inference_statistics()["model_stats"]} == {"bn", "small"}
    _expect_error(lambda: c.get_inference_statistics(model_name="nope"), "StatusCode.NOT_FOUND", "unknown model 'nope'")
    with pytest.raises(InferenceServerException) as e:
        h.get_inference_statistics(model_name="nope")
    assert "unknown model 'nope'" in e.value.message()
    c.close()
    h.close()


def test_asyncio_clients(server, network):
    import asyncio

    import tritonclient.grpc.aio as grpc_aio
    import tritonclient.http.aio as http_aio

    _, model = network
    x = nets.inputs(N_IN, 300, seed=11)
    want = model.predict(x)

    async def main():
        g = grpc_aio.InferenceServerClient(server.grpc_url)
        h = http_aio.InferenceServerClient(server.http_url)
        out_name = (await g.get_model_metadata("bn", as_json=True))["outputs"][0]["name"]

        async def one(client, mod, i):
            inp = mod.InferInput("input_1", [10, N_IN], "FP32")
            inp.set_data_from_numpy(x[i * 10:(i + 1) * 10])
            r = await client.infer("bn", [inp])
            return i, r.as_numpy(out_name)

        results = await asyncio.wait_for(asyncio.gather(
            *[one(g, grpc_aio, i) for i in range(15)], *[one(h, http_aio, i) for i in range(15, 30)]), 60)
        await g.close()
        await h.close()
        return results

    for i, got in asyncio.run(main()):
        np.testing.assert_array_equal(got, want[i * 10:(i + 1) * 10])


def test_grpc_http_and_metrics_over_tls(network, tmp_path):
    """--tls-cert/--tls-key: tritonclient's gRPC (ssl=True, the certificate as root) and HTTP
    (ssl=True, the certificate as CA) clients infer over TLS, /metrics answers over HTTPS, and
    plaintext clients are refused on every port; a key that does not match is refused at start."""
    import ssl
    import urllib.request

    import tritonclient.http as httpclient

    openssl = shutil.which("openssl")
    if not openssl:
        missing_input("openssl (to make a test certificate)")
    cli = _cli()

    def make_cert(name):
        cert, key = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
        subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                        "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
        return cert, key

    cert, key = make_cert("a")
    xclbin, model = network
    repo = fpyga.serve.write_repository(tmp_path / "repo", {"bn": xclbin})
    x = nets.inputs(N_IN)[:4]
    with fpyga.serve.start(repo, cli=cli, devices=["emu"],
                           extra_args=["--tls-cert", str(cert), "--tls-key", str(key)]) as s:
        c = grpcclient.InferenceServerClient(s.grpc_url, ssl=True, root_certificates=str(cert))
        assert c.is_server_live()
        out_name = c.get_model_metadata("bn", as_json=True)["outputs"][0]["name"]
        np.testing.assert_array_equal(_infer(c, x).as_numpy(out_name), model.predict(x))
        c.close()
        plain = grpcclient.InferenceServerClient(s.grpc_url)
        with pytest.raises(InferenceServerException):
            plain.is_server_live(client_timeout=5)
        plain.close()

        h = httpclient.InferenceServerClient(s.http_url, ssl=True, ssl_options={"ca_certs": str(cert)})
        assert h.is_server_live()
        inp = httpclient.InferInput("input_1", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        np.testing.assert_array_equal(h.infer("bn", [inp]).as_numpy(out_name), model.predict(x))
        h.close()
        plain = httpclient.InferenceServerClient(s.http_url, network_timeout=5)
        with pytest.raises(Exception):
            plain.is_server_live()
        plain.close()

        ctx = ssl.create_default_context(cafile=str(cert))
        text = urllib.request.urlopen(f"https://{s.metrics_url}/metrics", context=ctx, timeout=30).read().decode()
        assert 'fpyga_inference_request_success{model="bn",version="1"} 2' in text
        with pytest.raises(Exception):
            urllib.request.urlopen(f"http://{s.metrics_url}/metrics", timeout=5).read()

    _, other_key = make_cert("b")
    with pytest.raises(RuntimeError) as e:
        fpyga.serve.start(repo, cli=cli, devices=["emu"], grpc_port=0,
                          extra_args=["--tls-cert", str(cert), "--tls-key", str(other_key)])
    assert "not a matching PEM certificate and private key" in str(e.value), str(e.value)


# ---- deadlines, kernel failures, TLS on every endpoint -----------------------------------------

# Batches wait up to 3 s for 64 rows: a request alone stays queued long enough for its deadline
# to pass first.
QUEUED_CONFIG = """
max_batch_size: 64
dynamic_batching { preferred_batch_size: [ 64 ] max_queue_delay_microseconds: 3000000 }
"""
# Two requests of one row each make a batch at once.
PAIR_CONFIG = """
max_batch_size: 16
dynamic_batching { preferred_batch_size: [ 2 ] max_queue_delay_microseconds: 3000000 }
"""
# The faulty network's kernels copy the first n_out inputs of each sample to its outputs, except
# for a sample whose first input is -7: there they overrun the output buffer, writing on until
# emu's guard page after it (FPYGA_EMU_CHECK_BOUNDS=1) stops the run, as a card's bus error would.
FAULT_BODY = """
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n_out; ++j) out[i * n_out + j] = in[i * n_in + j];
    if (in[i * n_in] == -7) {
      volatile char* p = reinterpret_cast<volatile char*>(out + n * n_out);
      for (;;) *p++ = 0;
    }
  }
"""


@pytest.fixture(scope="module")
def ops_server(network, tmp_path_factory):
    cli = _cli()
    xclbin, _ = network
    root = tmp_path_factory.mktemp("ops")
    faulty = fpyga.serve.build_null_network(xclbin, root / "faulty.xclbin", work_dir=root / "work",
                                            body=FAULT_BODY)
    repo = fpyga.serve.write_repository(root / "repo", {
        "queued": (xclbin, QUEUED_CONFIG), "faulty": (faulty, PAIR_CONFIG)})
    with fpyga.serve.start(repo, cli=cli, devices=["emu:0", "emu:1"],
                           env={"FPYGA_EMU_DEVICES": "2", "FPYGA_EMU_CHECK_BOUNDS": "1"}) as s:
        yield s


def test_deadline_passed_in_the_queue_drops_the_request_before_any_device(ops_server, network):
    """gRPC's client deadline, and the 'timeout' parameter over gRPC and HTTP: a request that is
    still queued when its deadline passes is answered DEADLINE_EXCEEDED (504 over HTTP) at its
    deadline, not after the batch's 3 s delay, and no batch runs for it."""
    import tritonclient.http as httpclient

    _, model = network
    x = nets.inputs(N_IN, 64, seed=12)
    c = grpcclient.InferenceServerClient(ops_server.grpc_url)
    h = httpclient.InferenceServerClient(ops_server.http_url)
    key = 'model="queued",version="1"'
    before = _metrics(ops_server.metrics_url)

    t0 = time.monotonic()
    _expect_error(lambda: _infer(c, x[:1], model="queued", client_timeout=0.2), "StatusCode.DEADLINE_EXCEEDED")
    _expect_error(lambda: _infer(c, x[:1], model="queued", timeout=200000), "StatusCode.DEADLINE_EXCEEDED",
                  "model 'queued': the request's deadline passed while it was queued")
    inp = httpclient.InferInput("input_1", [1, N_IN], "FP32")
    inp.set_data_from_numpy(x[:1])
    with pytest.raises(InferenceServerException) as e:
        h.infer("queued", [inp], timeout=200000)
    assert "deadline passed while it was queued" in e.value.message(), e.value.message()
    assert e.value.status() == "504"
    assert time.monotonic() - t0 < 2.5, "the deadlines were not honoured before the 3 s batch delay"
    for bad in (-5, "soon"):
        with pytest.raises(InferenceServerException) as e:
            h.infer("queued", [inp], timeout=bad)
        assert "parameter 'timeout'" in e.value.message(), e.value.message()
    import grpc

    with grpc.insecure_channel(ops_server.grpc_url) as ch:
        req = service_pb2.ModelInferRequest(model_name="queued")
        req.inputs.add(name="input_1", datatype="FP32", shape=[1, N_IN])
        req.raw_input_contents.append(x[:1].tobytes())
        req.parameters["timeout"].string_param = "soon"
        with pytest.raises(grpc.RpcError) as e:
            service_pb2_grpc.GRPCInferenceServiceStub(ch).ModelInfer(req, timeout=30)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "parameter 'timeout' must be an integer (microseconds)" in e.value.details()

    # The server dropped all three (the client-side deadline's too), and ran no batch for them.
    deadline = time.monotonic() + 10
    while True:
        after = _metrics(ops_server.metrics_url)
        failed = after[f"fpyga_inference_request_failure{{{key}}}"] - before.get(f"fpyga_inference_request_failure{{{key}}}", 0)
        if failed >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert failed == 3
    assert after[f"fpyga_inference_exec_count{{{key}}}"] == before.get(f"fpyga_inference_exec_count{{{key}}}", 0)
    assert after[f"fpyga_inference_count{{{key}}}"] == before.get(f"fpyga_inference_count{{{key}}}", 0)

    # A full batch still runs at once, with or without a timeout.
    out_name = c.get_model_metadata("queued", as_json=True)["outputs"][0]["name"]
    np.testing.assert_array_equal(_infer(c, x, model="queued", timeout=30_000_000).as_numpy(out_name),
                                  model.predict(x))
    assert _metrics(ops_server.metrics_url)[f"fpyga_inference_exec_count{{{key}}}"] == \
        before.get(f"fpyga_inference_exec_count{{{key}}}", 0) + 1
    c.close()
    h.close()


def test_kernel_failure_fails_only_the_requests_of_its_batch(ops_server):
    """A kernel run that faults (a real overrun stopped by emu's guard page) fails the two
    requests batched together, INTERNAL naming the device and the batch; the model stays ready
    and the next batches are right."""
    c = grpcclient.InferenceServerClient(ops_server.grpc_url)
    out_name = c.get_model_metadata("faulty", as_json=True)["outputs"][0]["name"]
    # Multiples of 2^-10 within ap_fixed<16,6>: the identity kernel gives them back exactly.
    good = (np.arange(4 * N_IN, dtype=np.float32).reshape(4, N_IN) - 13) / 1024
    bad = good[:1].copy()
    bad[0, 0] = -7

    def pair(first, second):
        results, done = {}, threading.Semaphore(0)
        for i, x in enumerate((first, second)):
            inp = grpcclient.InferInput("input_1", list(x.shape), "FP32")
            inp.set_data_from_numpy(x)
            c.async_infer("faulty", [inp], client_timeout=60,
                          callback=lambda result, error, i=i: (results.__setitem__(i, (result, error)), done.release()))
        for _ in range(2):
            assert done.acquire(timeout=60), "a request got no answer"
        return results

    results = pair(bad, good[1:2])
    for i in (0, 1):
        result, error = results[i]
        assert result is None and error is not None
        assert error.status() == "StatusCode.INTERNAL", error
        assert "model 'faulty': the device emu:" in error.message()
        assert "failed the batch of 2 samples" in error.message(), error.message()
    assert c.is_server_live() and c.is_model_ready("faulty")
    results = pair(good[2:3], good[3:4])
    for i in (0, 1):
        result, error = results[i]
        assert error is None, error
        np.testing.assert_array_equal(result.as_numpy(out_name), good[2 + i:3 + i, :4])
    np.testing.assert_array_equal(_infer(c, good, model="faulty").as_numpy(out_name), good[:, :4])
    c.close()
