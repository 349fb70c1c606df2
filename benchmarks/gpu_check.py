"""One command to check wow on a GPU (< 8 min on one GPU) and record what it measured.

    python benchmarks/gpu_check.py              # on a machine with a GPU (JAX with CUDA)
    python benchmarks/gpu_check.py --cpu-smoke  # tiny sizes on the CPU: checks that the script works

Steps, each timed, each a row appended to benchmarks/RESULTS.md (--out):
1. tests on the GPU backend (JAX_PLATFORMS=cuda): the float32 drift guards and the core tests;
2. the device's copy bandwidth (jitted x -> x + c, read + write bytes/s);
3. throughput of every dynamics (frozen, wow, ehrenfest) of the chain model through wow.run, float32
   and float64, at samples x N >= 1e7 (smoke: 1e4), as sample*site*steps/s and as a fraction of the
   copy-bandwidth roofline (bytes per sample*site*step: frozen 24, wow and ehrenfest 32 in float32,
   twice that in float64), with the device's peak memory; and the density-density model (wow and
   frozen dynamics, g = 16) at samples x grid points >= 1e7 (smoke: 4096), 16 / 32 B per
   gridpoint*step, the step's rate from two run lengths, its roofline fraction against the 50% target;
4. float32 norm drift after 1e5 steps (ring N = 1024, 64 samples; smoke: 2e3 steps), wow dynamics
   with recoil, against float64 on the same samples;
5. a short sweep through the experiment entry point (`python -m wow run backscattering --device gpu`),
   then `wow inspect` of its file (checksums verified).
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

BYTES = {"frozen": 24, "wow": 32, "ehrenfest": 32}  # per sample*site*step in float32 (x2 in float64)


def sh(cmd, env=None, timeout=None):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
                       capture_output=True, text=True, timeout=timeout)
    return r.returncode, (r.stdout + r.stderr), time.perf_counter() - t0


def peak_memory(dev) -> str:
    """The device's peak memory in use so far ('1.23 GiB'), or 'n/a' where the backend does not say."""
    try:
        st = dev.memory_stats() or {}
    except Exception:  # noqa: BLE001 - not every backend reports memory
        return "n/a"
    return f"{st.get('peak_bytes_in_use', 0) / 2**30:.2f} GiB" if st else "n/a"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on the CPU (checks the script itself)")
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"), help="markdown file the rows are appended to")
    ap.add_argument("--skip-tests", action="store_true")
    args = ap.parse_args(argv)
    smoke = args.cpu_smoke
    if smoke:
        os.environ["JAX_PLATFORMS"] = "cpu"
    import jax

    jax.config.update("jax_enable_x64", True)
    import numpy as np

    import wow
    sys.path.insert(0, str(HERE))
    from throughput import copy_bandwidth

    kind = "cpu" if smoke else "gpu"
    devs = jax.devices(kind) if not smoke else jax.devices("cpu")
    if not smoke and devs[0].platform != "gpu":
        sys.exit("gpu_check: no GPU visible to JAX (use --cpu-smoke to check the script on the CPU)")
    dev_name = getattr(devs[0], "device_kind", devs[0].platform)
    rows = []
    t_all = time.perf_counter()

    def row(step, result, secs):
        rows.append(f"| {step} | {result} | {secs:.1f} |")
        print(rows[-1], flush=True)

    # 1. tests on the device backend
    if not args.skip_tests:
        sel = ["tests/test_float32.py", "-k", "defect or recoil_energy"] if smoke else \
            ["tests/test_float32.py", "tests/test_core.py"]
        rc, out, s = sh([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *sel],
                        env={"JAX_PLATFORMS": "cpu" if smoke else "cuda"}, timeout=300)
        row("tests " + " ".join(sel), ("passed: " if rc == 0 else "FAILED: ") + out.strip().splitlines()[-1], s)

    # 2. copy bandwidth
    bw = {}
    for dt_name, dt in (("float32", np.float32), ("float64", np.float64)):
        t0 = time.perf_counter()
        bw[dt_name] = copy_bandwidth(dt, nbytes=(16 if smoke else 1024) * 2**20, repeats=5 if smoke else 15)[0]
        row(f"copy bandwidth {dt_name}", f"{bw[dt_name] / 1e9:.1f} GB/s", time.perf_counter() - t0)

    # 3. throughput of every dynamics, both precisions
    N, S, steps = (256, 32, 50) if smoke else (4096, 4096, 400)
    for dyn in ("frozen", "wow", "ehrenfest"):
        for dtype in ("float32", "float64"):
            cfg = wow.Config(chain=wow.Chain(N=N, boundary="ring"), electron=wow.Electron(sigma=25.0 if N > 512 else 10.0),
                             dynamics=dyn, dt=0.02, duration=steps * 0.02, n_frames=1, dtype=dtype)
            t0 = time.perf_counter()
            res = wow.run(cfg, S, devices=kind, progress=False)
            rate = S * N * cfg.n_steps / res.run_s
            need = BYTES[dyn] * (2 if dtype == "float64" else 1)
            peak = peak_memory(devs[0])
            row(f"throughput {dyn} {dtype} N={N} samples={S} steps={cfg.n_steps}",
                f"{rate / 1e9:.3f} G site*steps/s = {rate * need / bw[dtype]:.2f} of the copy roofline "
                f"({need} B/site*step); compile {res.compile_s:.1f} s; peak {peak}", time.perf_counter() - t0)

    # 3b. the density-density (continuum) model, wow dynamics (its potential rebuilt every step) and
    # frozen, both precisions, at samples x grid points >= 1e7 (4096 x 4096 = 1.7e7; smoke: 4096).
    # The step's rate is the difference of two runs (n and 2n steps, after a warm-up run): a run's
    # fixed cost (sampling, the initial packet, the final Bloch tallies, ψ back to the host) is ~ a
    # few steps on a GPU and would understate the step; the whole-run rate is reported beside it. Bytes per gridpoint*step:
    # ψ read and written once (16 B float32, 32 B float64); the target is >= 50% of the roofline.
    Na, Sc, steps_c = (32, 8, 20) if smoke else (256, 4096, 200)
    for dyn in ("wow", "frozen"):
        for dtype in ("float32", "float64"):
            t0 = time.perf_counter()
            run_s, compile_s = [], 0.0
            for n in (steps_c, steps_c, 2 * steps_c):  # the first run warms the helpers' caches (measured 8x
                # slower than the same run repeated in the smoke), then n and 2n
                cfg = wow.Config(chain=wow.Chain(N=Na, boundary="ring"),
                                 electron=wow.Continuum(V0=2.0, w=0.5, g=16, sigma=4.0 if smoke else 25.0),
                                 dynamics=dyn, dt=0.02, duration=n * 0.02, n_frames=1, dtype=dtype, check_inside=False)
                res = wow.run(cfg, Sc, devices=kind, progress=False)
                run_s.append(res.run_s)
                compile_s += res.compile_s
            n_s = Na * 16
            run_s = run_s[1:]
            step_s = run_s[1] - run_s[0]
            whole = Sc * n_s * 2 * steps_c / run_s[1]
            need = 16 * (2 if dtype == "float64" else 1)
            # the extra steps must take a resolvable share of the longer run, else the fixed cost and
            # the timer's noise dominate (the smoke's tiny sizes): no step rate then
            resolved = step_s > 0.2 * run_s[0]
            rate = Sc * n_s * steps_c / step_s if resolved else float("nan")
            frac = rate * need / bw[dtype]
            peak = peak_memory(devs[0])
            row(f"throughput continuum {dyn} {dtype} N_s={n_s} samples={Sc} (samples x gridpoints = {Sc * n_s:.2g}) "
                f"steps={steps_c} and {2 * steps_c}",
                (f"step {rate / 1e9:.3f} G gridpoint*steps/s = {100 * frac:.1f}% of the copy roofline ({need} B/gridpoint*step; "
                 f"target >= 50%: {'met' if frac >= 0.5 else 'NOT met'})" if resolved else
                 f"step rate not resolved (runs {run_s[0]:.3f} s and {run_s[1]:.3f} s: fixed cost dominates)") +
                f"; whole run {whole / 1e9:.3f} G/s = "
                f"{100 * whole * need / bw[dtype]:.1f}%; compile {compile_s:.1f} s; peak {peak}", time.perf_counter() - t0)

    # 4. float32 drift over 1e5 steps against float64
    steps = 2000 if smoke else 100_000
    base = dict(chain=wow.Chain(N=1024, boundary="ring"), electron=wow.Electron(sigma=25.0), dynamics="wow",
                recoil=True, dt=0.02, duration=steps * 0.02, n_frames=1)
    t0 = time.perf_counter()
    r32 = wow.run(wow.Config(dtype="float32", **base), 8 if smoke else 64, devices=kind, progress=False)
    r64 = wow.run(wow.Config(dtype="float64", **base), 8 if smoke else 64, devices=kind, progress=False)
    n32 = np.asarray(r32.per_sample["norm"], float)
    dpb = np.abs(np.asarray(r32.per_sample["P_b"], float) - np.asarray(r64.per_sample["P_b"], float))
    row(f"float32 drift, wow+recoil ring N=1024, {steps} steps",
        f"mean norm-1 {n32.mean() - 1:.1e}, max |norm-1| {np.abs(n32 - 1).max():.1e}; |P_b32-P_b64| max {dpb.max():.1e}",
        time.perf_counter() - t0)

    # 5. a short sweep through the entry point, then inspect (checksums)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bs.h5"
        cmd = [sys.executable, "-m", "wow", "run", "backscattering", "--sizes", "256", "--temperatures", "300",
               "--statistics", "classical", "--dynamics", "wow", "--samples", "8" if smoke else "256",
               "--duration", "2", "--frames", "2", "--sigma", "10", "--device", kind, "--dtype", "float32",
               "--quiet", "--no-figure", "--out", str(out)]
        rc, text, s = sh(cmd, env={"JAX_PLATFORMS": "cpu"} if smoke else None, timeout=300)
        rc2, text2, s2 = sh([sys.executable, "-m", "wow", "inspect", str(out)]) if rc == 0 else (1, "", 0.0)
        ok = rc == 0 and rc2 == 0 and "intact" in text2
        row(f"sweep `wow run backscattering --device {kind}` + `wow inspect`",
            ("ok" if ok else f"FAILED (rc {rc}/{rc2}): {(text + text2).strip().splitlines()[-1:]}"), s + s2)

    total = time.perf_counter() - t_all
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    head = (f"\n## gpu_check{' --cpu-smoke' if smoke else ''} ({datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} "
            f"UTC, git {commit}, {dev_name} x{len(devs)}, jax {jax.__version__}, total {total:.0f} s)\n\n"
            f"`python benchmarks/gpu_check.py{' --cpu-smoke' if smoke else ''}`\n\n| step | result | s |\n|---|---|---|\n")
    with open(args.out, "a") as f:
        f.write(head + "\n".join(rows) + "\n")
    print(f"total {total:.0f} s; rows appended to {args.out}")
    return 0 if all("FAILED" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
