"""``fpyga.dask.predict``: a network over the chunks of a Dask collection, lazily.

Each chunk (partition) becomes one task that finds the model its worker loaded
(:class:`fpyga.dask.ModelPlugin`) and runs the chunk through it; the result has the input's
partitioning along the sample axis, in order. The task functions here are module-level, depend
only on their arguments (the chunk and a :class:`DaskModel`), and pickle by reference.

A worker without a device for the model (its device failed to open, or none was left for it)
hands its chunk to a worker that has one (a task submitted from the task, restricted to the
worker resource ``fpyga-<name>``), so a computation never depends on where Dask happened to
place a chunk.
"""

from __future__ import annotations

import numpy as np

from .plugin import DaskModel, ModelPlugin, NoDeviceError

__all__ = ["predict"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _plugin_of(worker, model: DaskModel) -> ModelPlugin:
    plugin = worker.plugins.get(model.plugin)
    if not isinstance(plugin, ModelPlugin):
        raise RuntimeError(f"fpyga.dask: model '{model.name}' is not registered on worker {worker.name} "
                           f"({worker.address}): call fpyga.dask.register(client, xclbin, name={model.plugin!r}) "
                           "before computing")
    return plugin


def _run_here(model: DaskModel, x: np.ndarray) -> np.ndarray:
    """Runs x on this worker's model; NoDeviceError if the worker has none."""
    from distributed import get_worker

    return _plugin_of(get_worker(), model).predict(x, model)


def _run_elsewhere(model: DaskModel, x: np.ndarray, why: NoDeviceError) -> np.ndarray:
    from distributed import worker_client

    with worker_client() as client:  # secedes: this worker's thread is free while it waits
        workers = client.scheduler_info(n_workers=-1)["workers"]
        if not any(w.get("resources", {}).get(model.resource) for w in workers.values()):
            raise RuntimeError(f"fpyga.dask: no worker of the cluster has a device for model '{model.name}' "
                               f"(see fpyga.dask.status(client, {model.plugin!r})); here: {why}")
        future = client.submit(_run_here, model, x, resources={model.resource: 1}, pure=False)
        return future.result()


def _run(model: DaskModel, x: np.ndarray) -> np.ndarray:
    """(n, ...) samples of a chunk -> (n, n_out) of x's dtype."""
    n = x.shape[0]
    if n == 0:
        return np.empty((0, model.n_outputs), x.dtype)
    x = np.ascontiguousarray(x.reshape(n, model.n_inputs))
    try:
        y = _run_here(model, x)
    except NoDeviceError as why:
        y = _run_elsewhere(model, x, why)
    return y.reshape(n, model.n_outputs)


def _predict_block(block, model):
    return _run(model, block)


def _predict_partition(part, model, columns, output_columns, dtype):
    import pandas as pd

    x = part[columns].to_numpy(dtype=dtype)
    return pd.DataFrame(_run(model, x), index=part.index, columns=output_columns)


def predict(model: DaskModel, X, *, columns=None, output_columns=None, dtype=None):
    """Runs a registered network over a Dask collection, lazily, on the workers' devices.

    Parameters
    ----------
    model : DaskModel
        From :func:`fpyga.dask.register`.
    X : dask.array.Array, dask.dataframe.DataFrame, or dask_awkward.Array
        - an array of float32/float64, shape ``(n, n_in)`` or ``(n, *input_shape)``, chunked
          along axis 0 (other axes are merged into one chunk);
        - a DataFrame: the ``columns`` (default all) in that order are the inputs;
        - a dask-awkward array of records (when dask-awkward is installed): the ``columns``
          fields, each a number per event, are the inputs.
    columns : list of str, optional
        The input columns (fields) of a DataFrame (awkward array).
    output_columns : list of str, optional
        Names of a DataFrame result's columns; default ``y0, y1, ...``.
    dtype : float32 or float64, optional
        The dtype a DataFrame's (awkward array's) inputs are converted to; default float32 when
        all the columns are float32, else float64. The result has the same dtype.

    Returns
    -------
    dask.array.Array or dask.dataframe.DataFrame
        ``(n, n_out)`` with X's chunks along axis 0 (a DataFrame: X's partitions and index),
        each sample bit for bit what ``fpyga.hls4ml.Model.predict`` gives in one process. For
        a dask-awkward input, a dask array with one chunk per partition.

    Raises
    ------
    TypeError
        X is not a supported collection, or not float32/float64.
    ValueError
        X's shape or columns do not fit the network.
    """
    if not isinstance(model, DaskModel):
        raise TypeError(f"fpyga.dask.predict: model must be the DaskModel fpyga.dask.register returns, "
                        f"got {type(model).__name__}")
    import dask.array as da

    if isinstance(X, da.Array):
        if columns is not None or output_columns is not None or dtype is not None:
            raise TypeError("fpyga.dask.predict: columns, output_columns and dtype apply to DataFrames; "
                            "convert an array with X.astype(np.float32)")
        return _predict_array(model, X)
    try:
        import dask.dataframe as dd
    except ImportError:  # dask without its dataframe extra
        dd = None
    if dd is not None and isinstance(X, dd.DataFrame):
        return _predict_frame(model, X, columns, output_columns, dtype)
    if dd is not None and isinstance(X, dd.Series):
        raise TypeError("fpyga.dask.predict: got a Series; pass a DataFrame and its input columns")
    dak = _dask_awkward()
    if dak is not None and isinstance(X, dak.Array):
        return _predict_awkward(model, X, columns, dtype)
    raise TypeError(f"fpyga.dask.predict: X must be a dask array or a dask DataFrame"
                    f"{' or a dask-awkward array' if dak is not None else ''}, got {type(X).__name__} "
                    "(for data in memory, use fpyga.hls4ml.Model.predict)")


def _predict_array(model, X):
    import dask.array as da
    from dask.base import tokenize

    if X.dtype not in _FLOATS:
        raise TypeError(f"fpyga.dask.predict: model '{model.name}' takes float32 or float64 input, got "
                        f"{X.dtype} (convert with X.astype(np.float32))")
    if X.ndim < 2 or X.shape[1:] not in (tuple(model.input_shape), (model.n_inputs,)):
        shapes = f"(n, {model.n_inputs})"
        if tuple(model.input_shape) != (model.n_inputs,):
            shapes += f" or (n, {', '.join(map(str, model.input_shape))})"
        raise ValueError(f"fpyga.dask.predict: model '{model.name}' expects an array of shape {shapes}, "
                         f"got {X.shape}")
    if any(len(c) > 1 for c in X.chunks[1:]):
        X = X.rechunk({axis: -1 for axis in range(1, X.ndim)})
    return da.map_blocks(_predict_block, X, model, dtype=X.dtype,
                         chunks=(X.chunks[0], (model.n_outputs,)),
                         drop_axis=list(range(2, X.ndim)) or None,
                         meta=np.empty((0, model.n_outputs), X.dtype),
                         name=f"fpyga-predict-{tokenize(model, X)}")


def _input_dtype(what, dtype, column_dtypes):
    if dtype is None:
        return np.dtype(np.float32) if all(d == np.float32 for d in column_dtypes) else np.dtype(np.float64)
    dtype = np.dtype(dtype)
    if dtype not in _FLOATS:
        raise TypeError(f"fpyga.dask.predict: dtype must be float32 or float64, got {dtype} ({what})")
    return dtype


def _columns(model, what, available, columns):
    columns = list(available) if columns is None else list(columns)
    missing = [c for c in columns if c not in available]
    if missing:
        raise ValueError(f"fpyga.dask.predict: {what} has no column(s) {missing}; it has {list(available)}")
    if len(columns) != model.n_inputs:
        raise ValueError(f"fpyga.dask.predict: model '{model.name}' takes {model.n_inputs} inputs, got "
                         f"{len(columns)} column(s) {columns}" + ("" if columns else " (pass columns=[...])"))
    return columns


def _predict_frame(model, df, columns, output_columns, dtype):
    import pandas as pd

    columns = _columns(model, "the DataFrame", list(df.columns), columns)
    for c in columns:
        if not pd.api.types.is_numeric_dtype(df.dtypes[c]) or pd.api.types.is_bool_dtype(df.dtypes[c]):
            raise TypeError(f"fpyga.dask.predict: column {c!r} is {df.dtypes[c]}, not a number")
    dtype = _input_dtype("DataFrame", dtype, [df.dtypes[c] for c in columns])
    if output_columns is None:
        output_columns = [f"y{i}" for i in range(model.n_outputs)]
    output_columns = list(output_columns)
    if len(output_columns) != model.n_outputs:
        raise ValueError(f"fpyga.dask.predict: model '{model.name}' has {model.n_outputs} outputs, got "
                         f"{len(output_columns)} output_columns")
    meta = pd.DataFrame({c: np.empty(0, dtype) for c in output_columns}, index=df._meta.index)
    return df.map_partitions(_predict_partition, model, columns, output_columns, dtype, meta=meta,
                             align_dataframes=False, transform_divisions=False)


def _dask_awkward():
    try:
        import dask_awkward
    except ImportError:
        return None
    return dask_awkward


def _predict_awkward(model, events, columns, dtype):
    """dask-awkward: each field a flat number per event; stacked per partition into (n, n_in)."""
    import dask.array as da

    dak = _dask_awkward()
    fields = list(events.fields)
    columns = _columns(model, "the awkward array", fields, columns)
    arrays = [dak.to_dask_array(events[c]) for c in columns]
    dtype = _input_dtype("awkward array", dtype, [a.dtype for a in arrays])
    stacked = da.stack([a.astype(dtype) for a in arrays], axis=1)
    return _predict_array(model, stacked)
