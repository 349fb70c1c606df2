"""Which devices run the thermal samples: the CPU's cores, every GPU, several hosts.

``wow.run`` shards the samples of each chunk over a list of devices (``resolve``; default: every
device of every process) and returns the same numbers as on one device. Two settings decide how
many devices there are, and both must be made before JAX starts its backends (before any array is
created), which the experiment scripts do from their flags:

* ``use_cpu_cores(n)``: the host CPU as n JAX devices (default: one per core this process may
  use). XLA's CPU backend otherwise runs one program and splits every fused loop over the cores,
  with a barrier after each; one program per core runs the samples side by side with none. Measured
  on the 2-core CI machine (benchmarks/RESULTS.md, N = 4096, 64 samples): wow float32 345 -> 510 M
  sample·site·steps/s, frozen float32 1060 -> 1790 M/s.
* ``distributed(coordinator, num_processes, process_id)``: several hosts (or processes) through
  ``jax.distributed``; each process runs the same script with its own ``process_id``. The samples of
  every chunk are then sharded over the devices of all processes and every process gathers all
  tallies (so results equal a one-process run); only process 0 writes results files. On CPUs the
  cross-process collectives use gloo.
"""

from __future__ import annotations

import os

import jax
import numpy as np

from .config import ConfigError


def available_cores() -> int:
    """Cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def use_cpu_cores(n: int | None = None) -> int:
    """Split the host CPU into ``n`` JAX devices (None: one per available core; 1: JAX's single
    device). Returns the number of CPU devices JAX will have. An explicit
    XLA_FLAGS=--xla_force_host_platform_device_count set by the user is kept. Raises ConfigError if
    JAX's backends have already started with another count (call it first, right after import)."""
    if n is None:
        n = available_cores()
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"cpu_devices={n!r}: allowed an integer >= 1 (or None: one per core)")
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return len(jax.devices("cpu"))
    try:
        jax.config.update("jax_num_cpu_devices", int(n))
    except AttributeError:  # a JAX without the option: the XLA flag does the same before start-up
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   f" --xla_force_host_platform_device_count={int(n)}").strip()
    except RuntimeError:  # backends already up: fine if they already have that many
        have = len(jax.devices("cpu"))
        if have != n:
            raise ConfigError(f"cpu_devices={n}: JAX has already started with {have} CPU device(s); "
                              "call wow.devices.use_cpu_cores before any JAX computation") from None
    return int(n)


def distributed(coordinator: str, num_processes: int, process_id: int) -> None:
    """Join a multi-process run through jax.distributed (call before any JAX computation, in every
    process, with the same coordinator 'host:port' and num_processes and its own process_id)."""
    if not isinstance(coordinator, str) or ":" not in coordinator:
        raise ConfigError(f"coordinator={coordinator!r}: allowed 'host:port' of process 0")
    if isinstance(num_processes, bool) or not isinstance(num_processes, (int, np.integer)) or num_processes < 1:
        raise ConfigError(f"num_processes={num_processes!r}: allowed an integer >= 1")
    if isinstance(process_id, bool) or not isinstance(process_id, (int, np.integer)) \
            or not 0 <= process_id < num_processes:
        raise ConfigError(f"process_id={process_id!r}: allowed an integer in [0, {num_processes - 1}]")
    try:  # CPU devices of several processes talk through gloo (GPUs use their own collectives)
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    except AttributeError:  # a JAX without the option
        pass
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=int(num_processes),
                               process_id=int(process_id))


def resolve(devices=None) -> list:
    """None: every device of the default backend, in every process; 'cpu' / 'gpu': all devices of
    that kind (a clear error if there are none); or an explicit list of jax devices."""
    if devices is None:
        return jax.devices()
    if isinstance(devices, str):
        if devices not in ("cpu", "gpu"):
            raise ConfigError(f"devices={devices!r}: allowed 'cpu', 'gpu', None or a list of jax devices")
        try:
            found = jax.devices(devices)
        except RuntimeError:
            found = []
        if not found:
            raise ConfigError(f"devices={devices!r}: no {devices.upper()} is visible to JAX here "
                              f"(available: {sorted({d.platform for d in jax.devices()})})")
        return found
    devices = list(devices)
    if not devices:
        raise ConfigError("devices=[]: give at least one device")
    return devices


#: XLA options for programs that run on CPUs. Region analysis lets copy insertion see that most
#: loop-carried arrays can be updated in place: the wow time loop keeps 4 of its 7 per-step copies
#: away (measured at N = 4096 x 64, 2 cores: wow float32 ~680 -> ~745, float64 ~280 -> ~320 M
#: sample·site·steps/s; frozen unchanged). Same program, same numbers (the test suite runs with it).
CPU_COMPILER_OPTIONS = {"xla_cpu_copy_insertion_use_region_analysis": True}


def compile_for(lowered, devices):
    """lowered.compile(), with CPU_COMPILER_OPTIONS when every device is a CPU; a JAX whose XLA no
    longer knows an option compiles without them (the options only change speed)."""
    if all(d.platform == "cpu" for d in devices):
        try:
            return lowered.compile(compiler_options=CPU_COMPILER_OPTIONS)
        except Exception as e:  # jax.errors.JaxRuntimeError: "No such compile option"
            if "compile option" not in str(e):
                raise
    return lowered.compile()


def put(tree, sharding):
    """Place host values (identical in every process) on ``sharding``; works when the sharding
    spans devices of other processes, where jax.device_put of a host array does not."""
    def one(x):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])
    return jax.tree_util.tree_map(one, tree)


def gather(tree):
    """Device arrays -> numpy, the whole array in every process (an all-gather across processes
    when there are several)."""
    if jax.process_count() == 1:
        return jax.tree_util.tree_map(np.asarray, tree)
    from jax.experimental import multihost_utils

    return jax.tree_util.tree_map(lambda x: np.asarray(multihost_utils.process_allgather(x, tiled=True)), tree)


def is_writer() -> bool:
    """Only process 0 writes files in a multi-process run."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process reaches this point (no-op with one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)
