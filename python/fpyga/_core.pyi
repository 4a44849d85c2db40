"""Type stub of fpyga._core, the compiled core of the fpyga package."""

from typing import Any, Iterable, Optional, Sequence

__version__: str

class memory_info:
    index: int
    type: str
    raw_type: int
    used: bool
    base_address: int
    size_bytes: int
    tag: str

class ip_info:
    index: int
    type: str
    raw_type: int
    name: str
    base_address: int
    control: str
    interrupt_enabled: bool
    interrupt_id: int
    kernel_name: str
    instance_name: str

class connection:
    arg_index: int
    ip_index: int
    memory_index: int

class clock_info:
    name: str
    frequency_mhz: int
    type: str
    raw_type: int

class arg_info:
    index: int
    name: str
    type: str
    kind: str
    address_qualifier: int
    port: str
    offset: int
    size: int
    host_offset: int
    host_size: int

class port_info:
    name: str
    mode: str
    range: int
    data_width: int

class instance_info:
    name: str
    base_address: int

class kernel_info:
    name: str
    language: str
    vlnv: str
    ports: list[port_info]
    args: list[arg_info]
    instances: list[instance_info]

class xclbin:
    uuid: str
    mode: str
    target: str
    agfi: Optional[str]
    platform: str
    source: str
    timestamp: int
    memories: list[memory_info]
    ips: list[ip_info]
    connectivity: list[connection]
    clocks: list[clock_info]
    kernels: list[kernel_info]
    embedded_metadata: str
    build_metadata: str
    bitstream_size: int
    bitstream_is_elf: bool
    @staticmethod
    def read(path: str) -> xclbin: ...
    @staticmethod
    def parse(data: bytes, source: str = "<memory>") -> xclbin: ...
    def memories_of(self, ip_index: int, arg_index: int) -> list[int]: ...
    def cu_instance(self, ip: ip_info) -> str: ...
    def to_json(self, indent: int = 2) -> str: ...
    network: Optional[str]  # the fpyga_network description (JSON), or None

class device:
    name: str
    backend: str
    index: int
    spec: str
    bdf: str
    shell: str
    @staticmethod
    def open(spec: str = "") -> device: ...
    def memories(self) -> list[memory]: ...
    def default_memory(self) -> memory: ...
    loads_xclbin: bool
    def sensors(self) -> sensor_readings: ...
    def clocks(self) -> list[clock_reading]: ...
    def max_clock_frequency_mhz(self) -> Optional[int]: ...
    def memory_usage(self) -> list[memory_usage]: ...

def devices() -> list[device]: ...

class backend_info:
    name: str
    hardware: bool
    available: bool
    reason: str
    plugin: str

def backends() -> list[backend_info]: ...

# Warnings and logs from the core (module.cpp).
class FpygaWarning(UserWarning): ...

def log_level() -> str: ...
def set_log_level(level: str) -> None: ...
def _warn(message: str) -> None: ...
def _log(level: int, message: str) -> None: ...

class rail_reading:
    name: str
    description: str
    volts: Optional[float]
    amps: Optional[float]
    watts: Optional[float]

class temperature_reading:
    name: str
    description: str
    celsius: float

class sensor_readings:
    source: str
    note: str
    power_watts: Optional[float]
    rails: list[rail_reading]
    temperatures: list[temperature_reading]

class clock_reading:
    name: str
    type: str
    frequency_mhz: int
    source: str

class memory_usage:
    index: int
    tag: str
    used_bytes: int
    buffers: int
    source: str

class memory:
    index: int
    tag: str
    type: str
    raw_type: int
    used: bool
    base_address: int
    size: int
    device: device
    def usage(self) -> memory_usage: ...

class buffer:
    size: int
    address: int
    device_address: int
    memory: memory
    device: device
    freed: bool
    def __init__(self, device: device, bytes: int, memory: Optional[memory] = None) -> None: ...
    def sync_to_device(self, bytes: int = ..., offset: int = 0) -> None: ...
    def sync_from_device(self, bytes: int = ..., offset: int = 0) -> None: ...
    def free(self) -> None: ...
    def __buffer__(self, flags: int) -> memoryview: ...

def buffer_of(array: Any) -> buffer: ...
def span_of(array: Any) -> tuple[buffer, int, int]: ...
def _install_array_methods(cls: type) -> None: ...

class kernel_arg:
    index: int
    name: str
    type: str
    kind: str
    offset: int
    size: int
    memories: list[memory]
    pointer: bool
    bits: int
    storage_bytes: int

class run:
    done: bool
    state: str
    def wait(self) -> None: ...
    def wait_for(self, seconds: float) -> str: ...

class kernel:
    kernel_name: str
    compute_units: list[str]
    kernel_args: list[kernel_arg]
    def __init__(self, overlay: overlay, name: str) -> None: ...
    def call(self, *args: Any, **kwargs: Any) -> None: ...
    def start(self, *args: Any, waitfor: Iterable[run] = (), **kwargs: Any) -> run: ...
    def read_register(self, offset: int) -> int: ...
    def write_register(self, offset: int, value: int) -> None: ...

class overlay:
    device: device
    xclbin: xclbin
    path: str
    loaded: bool
    def __init__(self, device: device, path: str) -> None: ...
    def kernel_names(self) -> list[str]: ...
    def memory(self, tag: str) -> memory: ...
    def memories(self) -> list[memory]: ...
    def release(self) -> None: ...

def _bench_cpp_roundtrip(
    kernel: kernel, input: Any, output: Any, args: Sequence[Any], iterations: int
) -> list[int]: ...

def _bench_gil_release() -> None: ...

# Networks in xclbins (bind_nn.cpp).
class nn_model:
    info: dict[str, Any]
    info_json: str
    n_inputs: int
    n_outputs: int
    compute_units: int
    devices: list[device]
    path: str
    raw_input_dtype: Any
    raw_output_dtype: Any
    chunk_samples: int
    def __init__(self, path: str, devices: Any = None) -> None: ...
    def predict(self, x: Any, progress: Optional[Any] = None, dtype: Any = None) -> Any: ...
    def predict_raw(self, x: Any, progress: Optional[Any] = None) -> Any: ...

def xclbin_pack(description: str, bitstream: bytes, path: str) -> str: ...

# Fixed-point conversions (bind_fixed.cpp, the demo's): NumPy <-> ap_fixed raw bits.
class fixed_format:
    width: int
    integer: int
    signed: bool
    quantization: int
    overflow: int
    sat_bits: int
    storage_bytes: int
    dtype: Any
    lsb: float
    min: float
    max: float
    def __init__(self, type: str) -> None: ...

def to_fixed(x: Any, type: str = "ap_fixed<16,6>", out: Any = None) -> Any: ...
def from_fixed(raw: Any, type: str = "ap_fixed<16,6>", dtype: Any = ...) -> Any: ...
