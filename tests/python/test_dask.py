"""Inference over a Dask cluster (issue 16): fpyga.dask on a LocalCluster of 2 worker processes,
each with an emulated device of its own (FPYGA_EMU_DEVICES=2 in the workers' environment).

Every result is compared, sample by sample, with fpyga.hls4ml.Model.predict in this process on
the same data; a worker killed mid-computation, a device that fails to open and a model that
fails to load are real (a SIGKILL, a device that does not exist, a damaged xclbin)."""

from __future__ import annotations

import os
import signal
import struct
import time

import numpy as np
import pytest

import dask.array as da
import distributed

import fpyga
import fpyga.dask
import fpyga.hls4ml

import hls4ml_networks as nets
from conftest import missing_input

#: Seconds any wait on the cluster may take before the test fails (nothing here may hang).
CLUSTER_TIMEOUT = 60


@pytest.fixture(scope="module")
def dataframes():
    """dask.dataframe and pandas (dask[dataframe] is in requirements.txt; it needs a pyarrow that
    imports with the installed NumPy)."""
    try:
        import dask.dataframe as dd
        import pandas as pd
    except ImportError as e:
        missing_input(f"dask.dataframe does not import: {e}")
    return dd, pd


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    """The batchnorm network (8 inputs, 4 outputs) built into an xclbin of 2 CUs, and inputs."""
    root = tmp_path_factory.mktemp("dask_net")
    files = nets.batchnorm(root / "keras")
    hls_model = nets.convert(files, root / "prj", io_type="io_parallel")
    xclbin = fpyga.hls4ml.build(hls_model, root / "bn.xclbin", compute_units=2)
    rng = np.random.default_rng(16)
    x = rng.normal(0, 2.0, (3000, 8))
    x[::97, 2] = 40.0  # saturating/wrapping samples among the others
    return xclbin, x


@pytest.fixture(scope="module")
def reference(network):
    """In-process Model.predict of the same data, float32 and float64."""
    xclbin, x = network
    model = fpyga.hls4ml.Model(xclbin, device=fpyga.Device.open("emu"))
    return {np.float32: model.predict(x.astype(np.float32)), np.float64: model.predict(x)}


def worker_names(client):
    return sorted(w["name"] for w in client.scheduler_info()["workers"].values())


def make_cluster(tmp_path, n_workers=2, devices=2, **kwargs):
    env = {"FPYGA_EMU_DEVICES": str(devices), "FPYGA_LOCK_DIR": str(tmp_path / "locks"),
           "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    env.update(kwargs.pop("env", {}))
    cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", env=env, **kwargs)
    return cluster, distributed.Client(cluster, timeout=CLUSTER_TIMEOUT)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    # emu:0 and emu:1 for the model 'fpyga' (a device each); emu:2 and emu:3 for the tests that
    # register other models beside it
    cluster, client = make_cluster(tmp_path_factory.mktemp("cluster"), devices=4)
    with cluster, client:
        yield client


@pytest.fixture(scope="module")
def model(client, network):
    xclbin, _ = network
    return fpyga.dask.register(client, xclbin.read_bytes())


def devices_of(report):
    return {a: s["devices"] for a, s in report.items()}


def assert_same(got, want):
    assert got.shape == want.shape and got.dtype == want.dtype
    bad = np.flatnonzero(np.any(got != want, axis=1))
    assert bad.size == 0, f"samples {bad[:10]} differ from in-process Model.predict"


# --- results -------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_array_result_is_bit_identical_to_in_process_predict(client, model, network, reference, dtype):
    _, x = network
    X = da.from_array(x.astype(dtype), chunks=(250, 8))
    X = da.concatenate([X[:1234], X[1234:]])  # uneven chunks
    y = fpyga.dask.predict(model, X)
    assert isinstance(y, da.Array) and y.dtype == dtype
    assert y.chunks == (X.chunks[0], (4,))  # lazy, same partitioning
    assert_same(y.compute(), reference[dtype])
    # both workers took part, each with its own device
    report = fpyga.dask.status(client)
    assert all(s["tasks"] > 0 for s in report.values()), report


def test_array_chunked_along_the_features_too(client, model, network, reference):
    _, x = network
    X = da.from_array(x, chunks=(700, 3))  # split along the features too: merged before predict
    assert_same(fpyga.dask.predict(model, X).compute(), reference[np.float64])


def test_dataframe_result_is_bit_identical_and_keeps_partitions(client, model, network, reference, dataframes):
    dd, pd = dataframes
    _, x = network
    frame = pd.DataFrame(x.astype(np.float32), columns=[f"f{i}" for i in range(8)])
    frame.insert(3, "event", np.arange(len(x)))  # a column the network does not take
    frame.index = frame.index * 10 + 5
    df = dd.from_pandas(frame, npartitions=7)
    # the inputs in another column order than the frame's: the result follows `columns`
    order = [f"f{i}" for i in (4, 0, 1, 2, 3, 5, 6, 7)]
    want = fpyga.hls4ml.Model(network[0], device="emu").predict(frame[order].to_numpy(np.float32))
    y = fpyga.dask.predict(model, df, columns=order, output_columns=["a", "b", "c", "d"])
    assert isinstance(y, dd.DataFrame) and y.npartitions == df.npartitions
    assert list(y.columns) == ["a", "b", "c", "d"] and all(t == np.float32 for t in y.dtypes)
    got = y.compute()
    assert got.index.equals(frame.index)
    assert_same(got.to_numpy(), want)
    # float64 columns -> float64 results, default names
    y64 = fpyga.dask.predict(model, dd.from_pandas(pd.DataFrame(x), npartitions=3)).compute()
    assert list(y64.columns) == ["y0", "y1", "y2", "y3"]
    assert_same(y64.to_numpy(), reference[np.float64])


# --- devices -------------------------------------------------------------------------------------
def test_each_worker_holds_its_own_device_and_loads_the_model_once(client, model, network):
    report = fpyga.dask.status(client)
    assert len(report) == 2
    assert all(s["state"] == "ready" for s in report.values()), report
    specs = [d for s in report.values() for d in s["devices"]]
    assert sorted(specs) == ["emu:0", "emu:1"], report  # one each, no two workers on one device
    assert all(s["compute_units"] == 2 and s["loads"] == 1 for s in report.values())
    before = {a: s["tasks"] for a, s in report.items()}
    X = da.from_array(network[1], chunks=(300, 8))
    fpyga.dask.predict(model, X).compute()
    after = fpyga.dask.status(client)
    assert sum(after[a]["tasks"] - before[a] for a in after) == X.numblocks[0]
    assert all(s["loads"] == 1 for s in after.values())  # kept between tasks, never reloaded


def test_a_host_of_8_devices_split_by_the_fpga_resource(tmp_path, network, reference):
    """2 workers with FPGA=4 each on a host of 8 devices: 4 each, disjoint, every CU used."""
    cluster, client = make_cluster(tmp_path, n_workers=2, devices=8, resources={"FPGA": 4})
    with cluster, client:
        model = fpyga.dask.register(client, network[0].read_bytes())
        report = fpyga.dask.status(client)
        assert all(len(s["devices"]) == 4 and s["compute_units"] == 8 for s in report.values()), report
        assert sorted(d for s in report.values() for d in s["devices"]) == [f"emu:{i}" for i in range(8)]
        X = da.from_array(network[1], chunks=(1000, 8))
        assert_same(fpyga.dask.predict(model, X).compute(), reference[np.float64])


def test_fpyga_device_of_a_worker_names_its_device(tmp_path, network):
    cluster, client = make_cluster(tmp_path, n_workers=1, env={"FPYGA_DEVICE": "emu:1"})
    with cluster, client:
        fpyga.dask.register(client, network[0].read_bytes())
        (s,) = fpyga.dask.status(client).values()
        assert s["devices"] == ["emu:1"] and s["state"] == "ready", s


def test_a_device_held_by_another_worker_is_refused(client, network):
    """An explicit map that gives both workers emu:2: the second is told who holds it."""
    with pytest.warns(RuntimeWarning, match=r"device error: .*emu:2 is claimed by another process"):
        fpyga.dask.register(client, network[0].read_bytes(), name="shared",
                            devices={name: "emu:2" for name in worker_names(client)})
    try:
        states = sorted(s["state"] for s in fpyga.dask.status(client, "shared").values())
        assert states == ["device error", "ready"]
        # the workers' reports reach the scheduler's event log too
        events = [e for _, e in client.get_events("fpyga") if e["plugin"] == "shared"]
        assert sorted(e["state"] for e in events) == ["device error", "ready"]
    finally:
        fpyga.dask.unregister(client, "shared")


# --- faults --------------------------------------------------------------------------------------
def test_a_worker_whose_device_fails_to_open_is_reported_and_others_take_its_tasks(client, network, reference):
    good, bad = worker_names(client)
    with pytest.warns(RuntimeWarning, match=rf"'broken' on worker {bad} .*device error: .*emu:7"):
        model = fpyga.dask.register(client, network[0].read_bytes(), name="broken",
                                    devices={good: "emu:2", bad: "emu:7"})
    try:
        report = {s["name"]: s for s in fpyga.dask.status(client, "broken").values()}
        assert report[good]["state"] == "ready" and report[good]["devices"] == ["emu:2"]
        assert report[bad]["state"] == "device error" and "emu:7" in report[bad]["error"]
        X = da.from_array(network[1], chunks=(200, 8))
        # the chunks go to both workers as usual; the one without a device hands them on
        assert_same(fpyga.dask.predict(model, X).compute(), reference[np.float64])
        report = {s["name"]: s for s in fpyga.dask.status(client, "broken").values()}
        assert report[good]["tasks"] == X.numblocks[0] and report[bad]["tasks"] == 0
    finally:
        fpyga.dask.unregister(client, "broken")


def bitstream_offset(data: bytes) -> int:
    """Offset of the BITSTREAM section's payload (layout: shared/FACTS.md)."""
    n = struct.unpack_from("<I", data, 448)[0]
    for i in range(n):
        kind, _name, offset, _size = struct.unpack_from("<I16s4xQQ", data, 456 + 40 * i)
        if kind == 0:
            return offset
    raise AssertionError("no BITSTREAM section")


def test_a_model_that_fails_to_load_fails_the_computation_with_the_workers_error(client, network):
    data = bytearray(network[0].read_bytes())
    off = bitstream_offset(data)
    data[off:off + 64] = bytes(64)  # the kernel object's ELF header is gone
    a, b = worker_names(client)
    with pytest.warns(RuntimeWarning, match="load error"):
        model = fpyga.dask.register(client, bytes(data), name="damaged", devices={a: "emu:2", b: "emu:3"})
    try:
        y = fpyga.dask.predict(model, da.from_array(network[1], chunks=(500, 8)))
        future = client.compute(y)
        with pytest.raises(RuntimeError, match=r"model 'bn' failed to load on worker .*emu:[23]"):
            future.result(timeout=CLUSTER_TIMEOUT)  # an error, never a hang
    finally:
        fpyga.dask.unregister(client, "damaged")


def test_no_worker_with_a_device_fails_the_computation_instead_of_waiting(client, network):
    a, b = worker_names(client)
    with pytest.warns(RuntimeWarning, match="device error"):
        model = fpyga.dask.register(client, network[0].read_bytes(), name="nowhere",
                                    devices={a: "emu:8", b: "emu:9"})
    try:
        future = client.compute(fpyga.dask.predict(model, da.from_array(network[1], chunks=(1000, 8))))
        with pytest.raises(RuntimeError, match=r"no worker of the cluster has a device for model 'bn'.*emu:[89]"):
            future.result(timeout=CLUSTER_TIMEOUT)
    finally:
        fpyga.dask.unregister(client, "nowhere")


def test_the_model_travels_as_a_path_every_worker_sees(client, network, reference):
    a, b = worker_names(client)
    model = fpyga.dask.register(client, str(network[0]), name="by_path", devices={a: "emu:2", b: "emu:3"})
    try:
        assert all(s["state"] == "ready" for s in fpyga.dask.status(client, "by_path").values())
        X = da.from_array(network[1], chunks=(600, 8))
        assert_same(fpyga.dask.predict(model, X).compute(), reference[np.float64])
    finally:
        fpyga.dask.unregister(client, "by_path")


def test_registering_again_replaces_the_model_and_old_graphs_are_refused(client, network, reference):
    a, b = worker_names(client)
    devices = {a: "emu:2", b: "emu:3"}
    first = fpyga.dask.register(client, network[0].read_bytes(), name="swap", devices=devices)
    try:
        X = da.from_array(network[1], chunks=(1500, 8))
        old_graph = fpyga.dask.predict(first, X)
        # the same network, another xclbin (its header's timestamp, bytes 312..320, differs)
        data = bytearray(network[0].read_bytes())
        data[312:320] = struct.pack("<Q", 12345)
        second = fpyga.dask.register(client, bytes(data), name="swap", devices=devices)
        assert second.digest != first.digest
        report = fpyga.dask.status(client, "swap")  # the old plugin gave its devices back first
        assert sorted(d for s in report.values() for d in s["devices"]) == ["emu:2", "emu:3"]
        assert all(s["state"] == "ready" and s["digest"] == second.digest for s in report.values())
        with pytest.raises(RuntimeError, match="holds another model under the name 'swap'"):
            old_graph.compute()
        assert_same(fpyga.dask.predict(second, X).compute(), reference[np.float64])
    finally:
        fpyga.dask.unregister(client, "swap")


def test_what_travels_is_small_and_holds_no_device(network):
    import pickle

    plugin = fpyga.dask.ModelPlugin(network[0].read_bytes(), devices={0: "emu:0"})
    copy = pickle.loads(pickle.dumps(plugin))
    assert copy.xclbin_bytes == plugin.xclbin_bytes and copy.devices == {0: "emu:0"}
    assert copy.status()["state"] == "not set up" and copy._model is None and copy._claims == []
    handle = fpyga.dask.DaskModel(plugin="fpyga", digest=plugin.digest, name="bn", input_shape=(8,),
                                  output_shape=(4,))
    assert len(pickle.dumps(handle)) < 1024


class KillOnce(distributed.WorkerPlugin):
    """SIGKILLs its worker process as it starts its ``nth`` predict task, once per cluster: the
    first worker to create ``marker`` dies (earlier results in its memory die with it)."""

    def __init__(self, marker, nth=3):
        self.marker, self.nth = str(marker), nth

    def setup(self, worker):
        self.started = 0

    def transition(self, key, start, finish, **kwargs):
        if finish != "executing" or "fpyga-predict" not in str(key):
            return
        self.started += 1
        if self.started < self.nth:
            return
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.write(fd, f"{os.getpid()}\n".encode())
        os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)


def test_a_worker_killed_mid_computation_loses_nothing(tmp_path, network, reference):
    cluster, client = make_cluster(tmp_path)
    with cluster, client:
        model = fpyga.dask.register(client, network[0].read_bytes())
        pids = {s["pid"] for s in fpyga.dask.status(client).values()}
        marker = tmp_path / "killed"
        client.register_plugin(KillOnce(marker), name="kill-once")
        X = da.from_array(network[1].astype(np.float32), chunks=(60, 8))  # 50 chunks
        got = fpyga.dask.predict(model, X).compute()
        assert marker.is_file(), "no worker was killed"
        killed = int(marker.read_text())
        assert killed in pids
        assert_same(got, reference[np.float32])  # complete, each sample once, exact
        # Dask started a worker in place of the dead one: it took the device the dead one held
        client.wait_for_workers(2, timeout=CLUSTER_TIMEOUT)
        deadline = time.monotonic() + CLUSTER_TIMEOUT
        while True:
            report = fpyga.dask.status(client)
            if len(report) == 2 and all(s["state"] == "ready" for s in report.values()):
                break
            assert time.monotonic() < deadline, report
            time.sleep(0.2)
        assert killed not in {s["pid"] for s in report.values()}
        assert sorted(d for s in report.values() for d in s["devices"]) == ["emu:0", "emu:1"]


# --- errors on the client ------------------------------------------------------------------------
def test_bad_inputs_are_refused_when_the_graph_is_built(model, network):
    x = network[1]
    with pytest.raises(TypeError, match="float32 or float64 input, got int64"):
        fpyga.dask.predict(model, da.from_array(x.astype(np.int64), chunks=100))
    with pytest.raises(ValueError, match=r"expects an array of shape \(n, 8\), got \(3000, 7\)"):
        fpyga.dask.predict(model, da.from_array(x[:, :7], chunks=100))
    with pytest.raises(TypeError, match="must be a dask array or a dask DataFrame"):
        fpyga.dask.predict(model, x)
    with pytest.raises(TypeError, match="DaskModel"):
        fpyga.dask.predict("bn.xclbin", da.from_array(x, chunks=100))


def test_bad_columns_are_refused_when_the_graph_is_built(model, network, dataframes):
    dd, pd = dataframes
    df = dd.from_pandas(pd.DataFrame(network[1], columns=list("abcdefgh")), npartitions=2)
    with pytest.raises(ValueError, match=r"no column\(s\) \['z'\]"):
        fpyga.dask.predict(model, df, columns=list("abcdefgz"))
    with pytest.raises(ValueError, match="takes 8 inputs, got 3 column"):
        fpyga.dask.predict(model, df, columns=list("abc"))
    with pytest.raises(ValueError, match="has 4 outputs, got 2 output_columns"):
        fpyga.dask.predict(model, df, output_columns=["p", "q"])
    named = dd.from_pandas(pd.DataFrame({**{c: network[1][:, i] for i, c in enumerate("abcdefg")},
                                         "h": ["x"] * len(network[1])}), npartitions=2)
    with pytest.raises(TypeError, match="column 'h' is .*, not a number"):
        fpyga.dask.predict(model, named)


def test_an_xclbin_without_a_network_is_refused_by_register(client, xclbin_dir):
    with pytest.raises(ValueError, match="carries no network description"):
        fpyga.dask.register(client, (xclbin_dir / "vadd.xclbin").read_bytes(), name="vadd")


def test_a_model_not_registered_on_the_workers_fails_naming_register(client, model, network):
    stale = fpyga.dask.DaskModel(plugin="never-registered", digest=model.digest, name=model.name,
                                 input_shape=model.input_shape, output_shape=model.output_shape)
    with pytest.raises(RuntimeError, match=r"not registered on worker .*fpyga.dask.register"):
        fpyga.dask.predict(stale, da.from_array(network[1], chunks=1000)).compute()
