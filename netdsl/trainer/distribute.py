"""Data parallelism on the engines Keras already has: `keras.distribution.DataParallel` on JAX,
`tf.distribute.MirroredStrategy` on TensorFlow, and several hosts through JAX's distributed runtime.

The batch a spec or `--batch` gives is the global batch: each step splits it evenly over the devices.
On a machine without accelerators, `--devices N` simulates N CPU devices (XLA's host device count,
or TensorFlow's logical CPUs), which tests the parallel path but is not faster.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Any

from netdsl.diagnostics import Diagnostic, NetdslError, Source
from netdsl.trainer.backends import BACKENDS, DEFAULT, Backend, running

HOST_DEVICES_FLAG = "--xla_force_host_platform_device_count"
MAX_DEVICES = 64
"""Most devices `--devices N` may ask for on one host (simulated on a CPU, each is an XLA or TensorFlow
device made at start-up: `--devices 10**22` overflowed TensorFlow, a million would exhaust memory)."""
INIT_TIMEOUT_S = 120  # how long a process waits for the others to join the coordinator


def parallel_error(message: str, help: str | None = None) -> NetdslError:
    """A device or cluster request that cannot be met (E526)."""
    return NetdslError([Diagnostic("E526", message, None, help=help)], Source("", "<devices>"))


@dataclass(frozen=True)
class Cluster:
    """One process's place in a multi-host run: the coordinator every process dials, and its number."""

    coordinator: str  # HOST:PORT of process 0
    processes: int
    process_id: int


@dataclass
class Parallel:
    """How a run is spread: the devices, the engine and the scope the model is built and trained in."""

    engine: str  # "keras.distribution.DataParallel" or "tf.distribute.MirroredStrategy"
    devices: list[str]
    simulated: bool
    cluster: Cluster | None = None
    strategy: Any = None  # the tf.distribute strategy (TensorFlow only)
    notes: list[str] = field(default_factory=list)

    def scope(self) -> contextlib.AbstractContextManager[Any]:
        """Where the model is built, compiled and fit (a tf.distribute scope; JAX needs none)."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def describe(self, batch: int) -> str:
        """The console line: devices, engine and the split of the global batch."""
        count = len(self.devices)
        kind = "simulated CPU devices" if self.simulated else "devices"
        where = f"{count} {kind} ({', '.join(self.devices[:4])}{', ...' if count > 4 else ''})"
        line = f"data parallel on {where} with {self.engine}: global batch {batch} = {count} x {batch // count}"
        if self.cluster is not None:
            line += f"; process {self.cluster.process_id} of {self.cluster.processes} (coordinator {self.cluster.coordinator})"
        return line


def requested(devices: int | str | None, cluster: Cluster | None) -> bool:
    """Whether the run asks for more than the default single device."""
    return cluster is not None or devices not in (None, 1)


def on_resume(
    recorded: dict[str, Any], backend: str | None, devices: int | str | None
) -> tuple[str | None, int | str | None, str]:  # fmt: skip
    """The backend and devices a resumed run continues on, and the console line that says so: those asked
    for (--backend, KERAS_BACKEND, a Keras already imported; --devices, 1 for one), else the run's own
    (config.json). Either may differ from the run's: a checkpoint holds the model's weights and optimizer
    state, not the devices', and the batch stays the global batch, so the steps are the same ones."""
    was_backend, was_devices = recorded.get("backend") or DEFAULT, recorded.get("devices")
    chosen = backend or os.environ.get("KERAS_BACKEND") or running() or was_backend
    engine = BACKENDS.get(chosen.strip().lower())
    if devices is None and engine is not None and engine.parallel is not None:
        devices = was_devices
    line = f"the run trained on {was_backend} with {_devices(was_devices)}; it continues on {chosen} with {_devices(devices)}"
    return chosen, devices, line


def _devices(count: int | str | None) -> str:
    return "all devices" if count == "all" else f"{count} devices" if count not in (None, 1) else "1 device"


def before_import(backend: Backend, devices: int | str | None, cluster: Cluster | None) -> None:
    """What the engine must read when it starts: on JAX, N host devices (used only where there is no
    accelerator); checks that the backend can train in parallel at all (E526)."""
    if not requested(devices, cluster):
        return
    if devices not in (None, "all") and (
        not isinstance(devices, int) or isinstance(devices, bool) or not 1 <= devices <= MAX_DEVICES
    ):
        raise parallel_error(f"--devices must be 'all' or a count from 1 to {MAX_DEVICES}, got {devices!r}")
    if backend.parallel is None:
        raise parallel_error(
            f"--devices and --coordinator need the jax or tensorflow backend; Keras has no data parallelism for {backend.name}"
        )
    if cluster is not None and backend.parallel != "keras":
        raise parallel_error(
            "training on several hosts (--coordinator) needs --backend jax", help="or train on one host with --devices"
        )
    if backend.name == "jax" and isinstance(devices, int) and HOST_DEVICES_FLAG not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {HOST_DEVICES_FLAG}={devices}".strip()


def setup(backend: Backend, devices: int | str | None, cluster: Cluster | None, batch: int) -> Parallel | None:
    """Join the cluster, pick the devices and install the distribution; None for one device."""
    if not requested(devices, cluster):
        return None
    parallel = _keras_parallel(devices, cluster) if backend.parallel == "keras" else _mirrored(devices)
    if batch % len(parallel.devices):
        raise parallel_error(
            f"the global batch {batch} does not split evenly over {len(parallel.devices)} devices",
            help=f"use a multiple of {len(parallel.devices)}, e.g. --batch {len(parallel.devices) * max(1, batch // len(parallel.devices))}",
        )
    return parallel


def check_splits(parallel: Parallel, sizes: dict[str, int]) -> None:
    """E526 for a split with fewer images than devices: each device needs one image of every batch (the
    batches' last partial one is cut to a multiple of the devices, see backends.tf_batches)."""
    count = len(parallel.devices)
    for split, size in sizes.items():
        if 0 < size < count:
            raise parallel_error(
                f"the {split} split has {size} image{'s' * (size != 1)}, fewer than the {count} devices it is split over",
                help=f"use more images (or --devices {size})",
            )  # fmt: skip


def _count(devices: int | str | None, available: int) -> int:
    """How many of the `available` devices to use (E526 if more are asked for)."""
    if devices in (None, "all"):
        return available
    if int(devices) > available:
        raise parallel_error(f"--devices {devices} asks for more devices than the {available} this machine has")
    return int(devices)


def _keras_parallel(devices: int | str | None, cluster: Cluster | None) -> Parallel:
    """JAX: join the cluster (gloo collectives on CPU), then DataParallel over the global devices."""
    import jax

    if cluster is not None:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        try:
            jax.distributed.initialize(
                coordinator_address=cluster.coordinator, num_processes=cluster.processes,
                process_id=cluster.process_id, initialization_timeout=INIT_TIMEOUT_S,
            )  # fmt: skip
        except Exception as err:  # the runtime's own errors (connection refused, timeout) are not one type
            raise parallel_error(
                f"cannot join the cluster at {cluster.coordinator}: {str(err).splitlines()[0][:300]}",
                help="start every process with the same --coordinator and --processes, each with its own --process-id",
            ) from None
    import keras

    found = jax.devices()
    chosen = found if cluster is not None else found[: _count(devices, len(found))]
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=chosen))
    simulated = chosen[0].platform == "cpu" and len(chosen) > 1
    return Parallel("keras.distribution.DataParallel", [str(d) for d in chosen], simulated, cluster)


def _mirrored(devices: int | str | None) -> Parallel:
    """TensorFlow: MirroredStrategy over the GPUs, or over N logical CPU devices where there are none."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    simulated = not gpus and devices not in (None, "all")
    if simulated:
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * int(devices))
        except RuntimeError:  # TensorFlow has started its devices already (a second run in one process)
            pass
        logical = [d.name for d in tf.config.list_logical_devices("CPU")]
        names = logical[: _count(devices, len(logical))]
    else:
        logical = [d.name for d in tf.config.list_logical_devices("GPU")] or ["/cpu:0"]
        names = logical[: _count(devices, len(logical))]
    strategy = tf.distribute.MirroredStrategy(devices=names)
    return Parallel("tf.distribute.MirroredStrategy", names, simulated and len(names) > 1, strategy=strategy)
