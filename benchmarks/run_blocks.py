"""wow.run's chunk program three ways, alternated in one sitting: one GSPMD program (main before
this change: ensemble.PER_DEVICE emptied), one program per device with all its samples in one block
(CPU_BLOCK_BYTES huge), and per device in inner blocks (the default): M sample·site·steps/s from
r.run_s per round (round 0 compiles, not counted), and the largest difference between the
GSPMD and blocked runs' per-sample numbers.

    flock /work/gate.lock flock -x /work/cpu.lock python benchmarks/run_blocks.py
    (--dtype float32 --force: blocks where wow.run does not use them, to measure them)
"""

import argparse
import subprocess

import jax
import numpy as np

import wow
from wow import devices, ensemble

devices.use_cpu_cores()
jax.config.update("jax_enable_x64", True)
import throughput  # noqa: E402  (benchmarks/: copy_bandwidth)

ap = argparse.ArgumentParser()
ap.add_argument("--N", type=int, default=4096)
ap.add_argument("--samples", type=int, default=64)
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--dynamics", nargs="+", default=["wow", "ehrenfest"])
ap.add_argument("--dtype", default="float64")
ap.add_argument("--force", action="store_true", help="block these dynamics/dtype even outside ensemble.BLOCKED")
a = ap.parse_args()

rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
bw = throughput.copy_bandwidth(a.dtype)
print(f"rev {rev}, {len(jax.devices())} devices, copy bandwidth {bw[0] / 1e9:.1f} GB/s (median; worst {bw[1] / 1e9:.1f}, best {bw[2] / 1e9:.1f})")
default = ensemble.CPU_BLOCK_BYTES
per_dev = ensemble.PER_DEVICE
if a.force:
    ensemble.BLOCKED = ensemble.BLOCKED | {(d, a.dtype) for d in a.dynamics}
    per_dev = ensemble.PER_DEVICE = ensemble.PER_DEVICE | {(d, a.dtype) for d in a.dynamics}
for dyn in a.dynamics:
    cfg = wow.Config(chain=wow.Chain(N=a.N), dynamics=dyn, dtype=a.dtype, temperature=300.0, dt=0.02,
                     duration=300 * 0.02, n_frames=1)
    work = a.samples * a.N * cfg.n_steps
    rates, results = {"GSPMD": [], "per device, 1 block": [], "blocks": []}, {}
    for rnd in range(a.rounds + 1):  # round 0 compiles and warms up, not counted
        for name, cache in (("GSPMD", default), ("per device, 1 block", 10**18), ("blocks", default)):
            ensemble.CPU_BLOCK_BYTES = cache
            ensemble.PER_DEVICE = set() if name == "GSPMD" else per_dev
            r = wow.run(cfg, a.samples, seed=1, progress=False)
            if rnd:
                rates[name].append(work / r.run_s / 1e6)
            results[name] = r
    ensemble.CPU_BLOCK_BYTES, ensemble.PER_DEVICE = default, per_dev
    per_device = 16 if a.dtype == "float64" else 32  # run's chunks at N = 4096 x 64 on 2 devices
    chunk = ensemble.block_size(cfg, per_device, jax.devices())
    diff = max(float(np.nanmax(np.abs(results["blocks"].per_sample[k] - results["GSPMD"].per_sample[k])))
               for k in ("P_b", "dE_e", "norm", "k_f"))
    line = "  ".join(f"{n}: {np.median(v):.1f} M/s ({', '.join(f'{x:.1f}' for x in v)})" for n, v in rates.items())
    print(f"{dyn} {a.dtype} N={a.N} x {a.samples}, {cfg.n_steps} steps, block {chunk} of {per_device} per device: {line}; "
          f"x{np.median(rates['blocks']) / np.median(rates['GSPMD']):.2f} (blocks / GSPMD); max |diff| P_b/dE_e/norm/k_f {diff:.1e}")
