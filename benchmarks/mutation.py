"""Mutation check: plant small, plausible bugs one at a time and see whether the tests catch them.

Each mutant is (name, file, the exact original snippet, the mutated snippet, the tests that should
catch it, the bug it models). For each, the repository's files (tracked and untracked-not-ignored,
as they are in the working tree) are copied to a temporary directory, the snippet is replaced
there, and pytest runs there with PYTHONPATH pointing at the copy: the working tree is never
edited. A snippet that no longer occurs exactly once is reported as "stale" (or "ambiguous"), never
silently skipped: the list must follow the code. An unmutated copy is run first (the baseline: all
selected tests must pass, or the run stops).

    flock -x /work/cpu.lock python benchmarks/mutation.py              # all mutants, 2 jobs
    python benchmarks/mutation.py --only jackknife_one_over_G,weighted_w_not_w2 --out -
    python benchmarks/mutation.py --list

Writes a table (planted, caught, survived, stale; which test caught each) to benchmarks/MUTATION.md
(--out - prints it instead). Not part of the test suite: it runs the suite's tests many times
(4.5 min on 2 cores for the 43 mutants below, with the compilation cache shared between the runs). A survivor is either killed by a new test or explained in
SURVIVOR_NOTES.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import dataclasses
import datetime
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    original: str
    mutated: str
    tests: tuple[str, ...]  # pytest arguments (paths, node ids, -k expressions)
    bug: str


# Test selections, the new reference tests first (pytest -x stops at the first failure).
STATS = ("tests/test_statistics.py",)
CHANNEL_TESTS = ("tests/test_tally_references.py", "tests/test_statistics.py", "tests/test_ehrenfest.py", "-k",
                 "channel or quasielastic or from_momenta")
OCC_TESTS = ("tests/test_tally_references.py", "tests/test_ehrenfest.py", "-k",
             "running or zone or standing or budget or phonon_momentum or plus_x or thermal_occupations")
LATTICE_TESTS = ("tests/test_tally_references.py", "tests/test_lattice.py", "-k",
                 "not ensemble and not channel and not quasielastic and not from_momenta")
THEORY_TESTS = ("tests/test_theory.py", "-k", "not propagator")
ENSEMBLE_DEB = ("tests/test_tally_references.py::test_ensemble_dE_b_is_the_energy_of_all_backscattered_weight",)

MUTANTS = [
    # --- wow/tally.py: estimators ------------------------------------------------------------
    Mutant("jackknife_one_over_G", "wow/tally.py", "se = np.sqrt((G - 1) / G *", "se = np.sqrt(1 / G *", STATS,
           "jackknife factor (G-1)/G -> 1/G (errors sqrt(G-1) = 5.6x too small at G = 32)"),
    Mutant("jackknife_factor_dropped", "wow/tally.py", "se = np.sqrt((G - 1) / G *", "se = np.sqrt(", STATS,
           "jackknife factor (G-1)/G dropped"),
    Mutant("jackknife_factor_squared", "wow/tally.py", "se = np.sqrt((G - 1) / G *", "se = np.sqrt(((G - 1) / G) ** 2 *",
           STATS, "jackknife factor squared"),
    Mutant("weighted_w_not_w2", "wow/tally.py", "np.sum(w**2 * (x - m) ** 2)", "np.sum(w * (x - m) ** 2)", STATS,
           "weighted standard error with w instead of w²"),
    Mutant("weighted_no_bessel", "wow/tally.py", "var = n / (n - 1) * np.sum(", "var = np.sum(", STATS,
           "weighted standard error without n/(n-1)"),
    Mutant("weighted_unweighted_mean", "wow/tally.py", "m = float(np.sum(w * x) / np.sum(w))", "m = float(np.mean(x))",
           STATS + ("tests/test_tally_references.py",), "ratio estimator replaced by the plain mean"),
    Mutant("mean_sem_ddof0", "wow/tally.py", "x.std(ddof=1) / np.sqrt(x.size)", "x.std(ddof=0) / np.sqrt(x.size)", STATS,
           "standard error with the biased variance (ddof = 0)"),
    Mutant("mean_sem_over_n", "wow/tally.py", "x.std(ddof=1) / np.sqrt(x.size)", "x.std(ddof=1) / x.size", STATS,
           "standard error divided by n instead of sqrt(n)"),
    Mutant("p_coh_over_n2", "wow/tally.py", "/ (n_tot * (n_tot - 1))", "/ (n_tot * n_tot)", STATS,
           "P_coh normalised by n² instead of n(n-1)"),
    Mutant("p_coh_plugin", "wow/tally.py", "((np.abs(Sb) ** 2).sum(-1) - Ab.sum(-1)) / (n_tot * (n_tot - 1))",
           "(np.abs(Sb) ** 2).sum(-1) / n_tot**2", STATS, "the unbiased P_coh replaced by the plug-in |S/n|²"),
    Mutant("coherent_forward_mask", "wow/tally.py", "Sb, Ab = S_tot[..., back_mask], A_tot[..., back_mask]",
           "Sb, Ab = S_tot[..., ~back_mask], A_tot[..., ~back_mask]", STATS, "coherent split over k > 0"),
    Mutant("dE_b_sign", "wow/tally.py", '"dE_b": E_b - E_in,', '"dE_b": E_in - E_b,', ENSEMBLE_DEB,
           "sign of the backscattered energy change"),
    Mutant("P_b_includes_k0", "wow/tally.py", "back = p.k < 0\n", "back = p.k <= 0\n", ENSEMBLE_DEB,
           "P_b counts the k = 0 component"),
    # --- wow/channels.py ---------------------------------------------------------------------
    Mutant("hw_at_qa", "wow/channels.py", "jnp.sin((k_in - k) * a / 2)", "jnp.sin((k_in - k) * a)", CHANNEL_TESTS,
           "ħω(q) at the wrong argument |sin(qa)| (agrees with |sin(qa/2)| at q = 2k0, k0 a = π/3)"),
    Mutant("hw_at_k_in_plus_k", "wow/channels.py", "jnp.sin((k_in - k) * a / 2)", "jnp.sin((k_in + k) * a / 2)",
           CHANNEL_TESTS, "momentum transfer q = <k>_0 + k' (sign)"),
    Mutant("hw_at_2k0", "wow/channels.py", "jnp.sin((k_in - k) * a / 2)", "jnp.sin(k_in * a)", CHANNEL_TESTS,
           "ħω evaluated at q = 2<k>_0 for every k' (right only at k' = -<k>_0)"),
    Mutant("quasi_signed", "wow/channels.py", "jnp.where(jnp.abs(dE) < hw, 1,", "jnp.where(dE < hw, 1,", CHANNEL_TESTS,
           "quasielastic window tested on ΔE instead of |ΔE| (sign)"),
    Mutant("inelastic_superelastic_swapped", "wow/channels.py", "jnp.where(dE < 0, 2, 3)", "jnp.where(dE > 0, 2, 3)",
           CHANNEL_TESTS, "emission and absorption swapped"),
    Mutant("resolution_one_sigma", "wow/channels.py", "return 2 * jnp.sqrt(jnp.sum((eps - E) ** 2",
           "return jnp.sqrt(jnp.sum((eps - E) ** 2", CHANNEL_TESTS, "default δ one energy std instead of two"),
    Mutant("channels_back_includes_k0", "wow/channels.py", "back = jnp.broadcast_to(k, w0.shape) < 0",
           "back = jnp.broadcast_to(k, w0.shape) <= 0", CHANNEL_TESTS, "channel weights count k = 0"),
    Mutant("fractions_unweighted", "wow/channels.py", "out[c] = weighted_mean_sem(x, np.where(ok, P_b, 0.0))",
           "out[c] = weighted_mean_sem(x, np.where(ok, 1.0, 0.0))", CHANNEL_TESTS,
           "ensemble fractions as unweighted means of per-sample shares"),
    # --- wow/occupations.py ------------------------------------------------------------------
    Mutant("running_direction_sign", "wow/occupations.py", "alpha = (U + 1j * V / w) / 2", "alpha = (U - 1j * V / w) / 2",
           OCC_TESTS, "running-wave amplitude with the wrong direction of travel"),
    Mutant("phonon_momentum_sign", "wow/occupations.py", "np.isclose(np.abs(q), np.pi / chain.a), 0.0, q)",
           "np.isclose(np.abs(q), np.pi / chain.a), 0.0, -q)", OCC_TESTS, "sign of the crystal momentum ħq"),
    Mutant("zone_boundary_momentum", "wow/occupations.py",
           "hq = HBAR * np.where(np.isclose(np.abs(q), np.pi / chain.a), 0.0, q)", "hq = HBAR * q", OCC_TESTS,
           "the q = π/a standing wave given crystal momentum π/a"),
    Mutant("running_omega_off_by_one", "wow/occupations.py", "np.sin(np.pi * np.arange(1, N) / N)",
           "np.sin(np.pi * np.arange(0, N - 1) / N)", OCC_TESTS, "mode index off by one in ω_q"),
    Mutant("standing_plus_half", "wow/occupations.py", "return E, E / (HBAR * w) - 0.5", "return E, E / (HBAR * w) + 0.5",
           OCC_TESTS, "n_j = E/ħω + 1/2 (zero point with the wrong sign)"),
    Mutant("lattice_energy_open_bonds_on_ring", "wow/occupations.py",
           'b = jnp.roll(lat.u, -1) - lat.u if chain.boundary == "ring" else lat.u[1:] - lat.u[:-1]',
           "b = lat.u[1:] - lat.u[:-1]", OCC_TESTS, "ring energy without the closing bond"),
    Mutant("budget_cm_sign", "wow/occupations.py", '"dP_cm": -(dP_e + dP_ph)', '"dP_cm": -(dP_e - dP_ph)', OCC_TESTS,
           "CM budget with the phonon momentum's sign flipped"),
    Mutant("budget_dn_final_only", "wow/occupations.py", '"dn": jnp.sum(nf - n0)', '"dn": jnp.sum(nf)', OCC_TESTS,
           "quanta created counted from the final state only"),
    # --- wow/lattice.py ----------------------------------------------------------------------
    Mutant("thermal_factor_x_not_half", "wow/lattice.py", "x = HBAR * omega / (2.0 * KB * safe_T)",
           "x = HBAR * omega / (KB * safe_T)", LATTICE_TESTS, "coth(ħω/k_BT) instead of coth(ħω/2k_BT)"),
    Mutant("open_frequency_off_by_one", "wow/lattice.py", "return w0 * np.sin(j * np.pi / (2 * chain.N))",
           "return w0 * np.sin((j + 1) * np.pi / (2 * chain.N))", LATTICE_TESTS, "open-chain mode index off by one"),
    Mutant("open_mode_shape", "wow/lattice.py", "np.cos(j * np.pi * (n + 0.5) / N)", "np.cos(j * np.pi * (n + 1) / N)",
           LATTICE_TESTS, "open-chain eigenvector with the wrong phase"),
    Mutant("fock_factor_half", "wow/lattice.py", "x = HBAR * w / (KB * jnp.maximum(T, 1e-300))",
           "x = HBAR * w / (2 * KB * jnp.maximum(T, 1e-300))", LATTICE_TESTS, "Fock sampler at twice the temperature"),
    Mutant("fock_mean_boltzmann", "wow/lattice.py", "return 1.0 / np.expm1(x)", "return 1.0 / np.exp(x)", LATTICE_TESTS,
           "Bose-Einstein mean replaced by the Boltzmann factor"),
    Mutant("cm_std_without_N", "wow/lattice.py", "jnp.sqrt(chain.N * chain.mass_ev * KB * T)",
           "jnp.sqrt(chain.mass_ev * KB * T)", LATTICE_TESTS, "CM momentum spread without the N (A10)"),
    Mutant("harmonic_motion_sign", "wow/lattice.py", "Pt = s.P * c - M * w * s.Q * sn", "Pt = s.P * c + M * w * s.Q * sn",
           LATTICE_TESTS, "sign in the exact harmonic motion"),
    Mutant("quantum_P_variance", "wow/lattice.py", "HBAR * M * w / 2 * c", "HBAR * M * w * c", LATTICE_TESTS,
           "quantum momentum variance without the 1/2"),
    # --- wow/theory.py -----------------------------------------------------------------------
    Mutant("recoil_sign", "wow/theory.py", "return 2.0 * hk * (P + hk) / (N * M)", "return 2.0 * hk * (P - hk) / (N * M)",
           THEORY_TESTS, "A8 with the wrong sign of ħk"),
    Mutant("reflection_half_angle", "wow/theory.py", "return num / (num + 4.0 * x2 * np.sin(kk * a) ** 2)",
           "return num / (num + 4.0 * x2 * np.sin(kk * a / 2) ** 2)", THEORY_TESTS, "closed-form R(k) at ka/2"),
    Mutant("debye_waller_dims_swapped", "wow/theory.py", "(3.0 if dim == 3 else 1.0)", "(1.0 if dim == 3 else 3.0)",
           THEORY_TESTS, "2W = q²<u²>/3 applied in 1D"),
    Mutant("huang_rhys_bessel_arg", "wow/theory.py",
           "z = 2 * lam * np.sqrt(nbar * (nbar + 1))\n    log_f", "z = lam * np.sqrt(nbar * (nbar + 1))\n    log_f",
           THEORY_TESTS, "Bessel argument without its factor 2"),
    Mutant("theory_occupations_half", "wow/theory.py", "x = HBAR * w / (KB * T)\n    return np.exp(-x)",
           "x = HBAR * w / (2 * KB * T)\n    return np.exp(-x)", THEORY_TESTS, "Bose-Einstein at twice the temperature"),
    Mutant("msd_ring_closed_form", "wow/theory.py", "kT * (N**2 - 1) / (12 * N * K)", "kT * (N**2 + 1) / (12 * N * K)",
           THEORY_TESTS, "ring <u²> closed form off by 2/(N²-1)"),
]

#: Why a survivor is harmless or where it is caught instead (name -> note), kept with the list.
SURVIVOR_NOTES: dict[str, str] = {}


def repo_files(root: Path) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=root, capture_output=True, text=True,
                         check=True).stdout.split("\n")
    return [f for f in out if f and (root / f).is_file()]


def make_copy(root: Path, files: list[str], dest: Path):
    for f in files:
        target = dest / f
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / f, target)


def apply(dest: Path, m: Mutant) -> str | None:
    """Plant the mutant in the copy; return None, or 'stale'/'ambiguous'."""
    path = dest / m.file
    if not path.is_file():
        return "stale"
    text = path.read_text()
    count = text.count(m.original)
    if count != 1:
        return "stale" if count == 0 else "ambiguous"
    path.write_text(text.replace(m.original, m.mutated))
    return None


def run_pytest(dest: Path, tests, timeout: float, cache: str | None, stop: bool = True) -> tuple[int | None, str, float]:
    env = dict(os.environ, PYTHONPATH=str(dest), JAX_PLATFORMS="cpu", OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    if cache:  # compiled programs keyed by their HLO: a mutant that changes a program misses the cache
        env.update(JAX_COMPILATION_CACHE_DIR=cache, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    cmd = [sys.executable, "-m", "pytest", *(["-x"] if stop else []), "-q", "-rfE", "-p", "no:cacheprovider", *tests]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=dest, env=env, capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout + p.stderr, time.perf_counter() - t0
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        return None, out, time.perf_counter() - t0


def failures(output: str) -> str:
    """The failing tests (file::name[param]) from pytest's short summary, comma-separated."""
    return ", ".join(node.split("/")[-1] for node in re.findall(r"^(?:FAILED|ERROR) (\S+)", output, re.M))


def failure_message(output: str) -> str:
    """The first assertion message line (for the table: how the test saw the bug)."""
    m = re.search(r"^E\s+(\S.*)$", output, re.M)
    return m.group(1).strip()[:110].replace("|", "\\|") if m else ""


def one(root: Path, files: list[str], m: Mutant | None, tests, timeout: float, cache: str | None,
        stop: bool = True, logs: str | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="wow-mutant-") as tmp:
        dest = Path(tmp)
        make_copy(root, files, dest)
        if m is not None:
            bad = apply(dest, m)
            if bad:
                return {"result": bad, "by": "", "msg": "", "s": 0.0}
        rc, out, secs = run_pytest(dest, tests, timeout, cache, stop)
    if logs:
        Path(logs, f"{m.name}.log" if m else f"baseline-{'_'.join(tests)[:60].replace('/', '_')}.log").write_text(out)
    if rc is None:
        return {"result": "caught (timeout)", "by": "", "msg": f"over {timeout:g} s", "s": secs}
    if rc == 0:
        return {"result": "survived", "by": "", "msg": "", "s": secs}
    if rc == 1:
        return {"result": "caught", "by": failures(out), "msg": failure_message(out), "s": secs}
    tail = out.strip().splitlines()[-3:]
    return {"result": f"error (pytest rc {rc})", "by": "", "msg": " / ".join(tail)[:200], "s": secs}


def table(rows, wall, jobs, commit, argv) -> str:
    n = {k: sum(1 for _, r in rows if r["result"].startswith(k)) for k in ("caught", "survived", "stale", "ambiguous", "error")}
    planted = len(rows) - n["stale"] - n["ambiguous"]
    L = ["# Mutation check", "",
         f"`{' '.join(argv)}` — {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, git {commit}, "
         f"{jobs} parallel jobs, wall {wall / 60:.1f} min.", "",
         f"**planted {planted}, caught {n['caught']}, survived {n['survived']}, stale {n['stale'] + n['ambiguous']}, "
         f"errors {n['error']}** ({100 * n['caught'] / max(planted, 1):.0f}% caught).", "",
         "| mutant | file | planted bug | result | caught by | first assertion | s |", "|---|---|---|---|---|---|---|"]
    for m, r in rows:
        L.append(f"| {m.name} | {m.file} | {m.bug} | {r['result']} | {r['by']} | {r['msg']} | {r['s']:.0f} |")
    surv = [m for m, r in rows if r["result"] == "survived"]
    if surv:
        L += ["", "Survivors:", ""]
        L += [f"- {m.name}: {SURVIVOR_NOTES.get(m.name, 'NOT EXPLAINED: needs a test or a note')}" for m in surv]
    return "\n".join(L) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=2, help="mutants run in parallel (default 2)")
    ap.add_argument("--only", default="", help="comma-separated mutant names")
    ap.add_argument("--timeout", type=float, default=400.0, help="seconds per mutant's pytest run")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "MUTATION.md"), help="report file, '-' for stdout")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--no-baseline", action="store_true", help="skip the unmutated run")
    ap.add_argument("--no-cache", action="store_true", help="no shared JAX compilation cache between the runs")
    ap.add_argument("--tests", default=None,
                    help="run these pytest arguments for every selected mutant instead of its own (e.g. to see "
                         "what the suite without some file catches)")
    ap.add_argument("--logs", default=None, help="directory to keep each mutant's pytest output in")
    ap.add_argument("--all-failures", action="store_true",
                    help="run each selection to the end (no -x) and list every test that fails")
    args = ap.parse_args(argv)
    names = {m.name for m in MUTANTS}
    assert len(names) == len(MUTANTS), "duplicate mutant names"
    if args.list:
        for m in MUTANTS:
            print(f"{m.name:34s} {m.file:20s} {m.bug}")
        return 0
    sel = MUTANTS
    if args.only:
        want = [s for s in args.only.split(",") if s]
        unknown = sorted(set(want) - names)
        if unknown:
            ap.error(f"--only: unknown mutant(s) {unknown}; see --list")
        sel = [m for m in MUTANTS if m.name in want]
    if args.logs:
        Path(args.logs).mkdir(parents=True, exist_ok=True)
    if args.tests is not None:
        sel = [dataclasses.replace(m, tests=tuple(shlex.split(args.tests))) for m in sel]
    if args.jobs < 1:
        ap.error(f"--jobs={args.jobs}: allowed integers >= 1")
    files = repo_files(ROOT)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = [ln for ln in subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True,
                                         text=True).stdout.splitlines() if not ln.endswith("benchmarks/MUTATION.md")]
    commit += " (+ uncommitted changes)" if dirty else ""
    cache_dir = None if args.no_cache else tempfile.mkdtemp(prefix="wow-mutation-jax-cache-")
    t0 = time.perf_counter()
    try:
        return _run(args, sel, files, commit, cache_dir, t0, argv)
    finally:
        if cache_dir:
            shutil.rmtree(cache_dir, ignore_errors=True)


def _run(args, sel, files, commit, cache_dir, t0, argv):
    if not args.no_baseline:
        union = []
        for m in sel:  # the baseline runs every selection once, unmutated
            if m.tests not in union:
                union.append(m.tests)
        with cf.ThreadPoolExecutor(args.jobs) as ex:
            base = list(ex.map(lambda t: one(ROOT, files, None, t, args.timeout, cache_dir), union))
        bad = [(t, b) for t, b in zip(union, base) if b["result"] != "survived"]
        if bad:
            for t, b in bad:
                print(f"baseline FAILS for {' '.join(t)}: {b['result']} {b['by']} {b['msg']}", file=sys.stderr)
            return 1
        print(f"baseline: {len(union)} test selections pass unmutated ({time.perf_counter() - t0:.0f} s)", flush=True)
    with cf.ThreadPoolExecutor(args.jobs) as ex:
        futs = {ex.submit(one, ROOT, files, m, m.tests, args.timeout, cache_dir, not args.all_failures, args.logs): m
                for m in sel}
        done = {}
        for f in cf.as_completed(futs):
            m = futs[f]
            done[m.name] = f.result()
            r = done[m.name]
            print(f"{m.name:34s} {r['result']:18s} {r['by']} ({r['s']:.0f} s)", flush=True)
    rows = [(m, done[m.name]) for m in sel]
    wall = time.perf_counter() - t0
    text = table(rows, wall, args.jobs, commit, ["python", "benchmarks/mutation.py", *(argv if argv is not None else sys.argv[1:])])
    if args.out == "-":
        print(text)
    else:
        Path(args.out).write_text(text)
        print(f"wrote {args.out} ({wall / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
