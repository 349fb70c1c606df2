"""The best vectorised numpy version of wow's split-operator step we could write: the yardstick
for benchmarks/throughput.py.

Same algorithm as the JAX core for D = 0, no recoil, open chain, even N (the default physics): a
batch axis of samples, ψ as one complex (S, N) array updated in place through strided views (no
roll, no concatenate), preallocated scratch buffers, the outer half layer B_even/2 of
neighbouring steps merged into one layer (B_even(θ_n/2) B_even(θ_{n+1}/2) = B_even((θ_n + θ_{n+1})/2)
exactly), the same exactly unitary rational rotation (no transcendental functions), and for
``wow`` the same mid-step Taylor harmonic flow of the lattice (in place). numpy runs single-threaded
element-wise loops; that is part of what the ratio measures.
"""

from __future__ import annotations

import numpy as np

HBAR = 0.6582119569  # eV·fs


def rotation(theta, c, s):
    """c, s (preallocated) of the exactly unitary rational rotation used by wow.propagate."""
    y = theta * 0.5
    y2 = y * y
    n = y * (15 - y2)
    d = 15 - 6 * y2
    r = 1 / (d * d + n * n)
    np.multiply(d * d - n * n, r, out=c)
    np.multiply(2 * n * d, r, out=s)


class Stepper:
    """Propagates S samples of an open chain of even N with SSH hoppings t = t0 - α(u_{n+1} - u_n)."""

    def __init__(self, psi, u, v, t0, alpha, dt, omega2, n_terms, dynamics):
        if psi.shape[-1] % 2:
            raise ValueError("numpy baseline: even N only")
        self.psi, self.u, self.v = psi, u, v
        self.t0, self.alpha, self.dt, self.omega2 = t0, alpha, dt, omega2
        self.n_terms, self.dynamics = n_terms, dynamics
        S, N = psi.shape
        real = u.dtype
        M = N // 2
        # scratch: bond angles and rotation coefficients of both parities, complex temporaries
        self.th_e = np.zeros((S, M), real)  # even-bond half angles of the previous step
        self.th_o = np.zeros((S, M - 1), real)
        self.buf_e = np.zeros((S, M), real)
        self.ce, self.se = np.empty((S, M), real), np.empty((S, M), real)
        self.co, self.so = np.empty((S, M - 1), real), np.empty((S, M - 1), real)
        self.t1 = np.empty((S, M), psi.dtype)
        self.t2 = np.empty((S, M), psi.dtype)
        self.b = np.empty((S, N - 1), real)
        if dynamics == "wow":
            self.tu, self.tv = np.empty_like(u), np.empty_like(v)
            self.lap = np.empty_like(u)
            self._flow(dt / 2)  # the lattice is carried at mid-step times
        self.pending = False

    # --- lattice -------------------------------------------------------------------------------
    def _laplacian(self, x, out):
        """(L x)_n for free ends, in place."""
        out[:, 1:-1] = 2 * x[:, 1:-1]
        out[:, 1:-1] -= x[:, :-2]
        out[:, 1:-1] -= x[:, 2:]
        out[:, 0] = x[:, 0] - x[:, 1]
        out[:, -1] = x[:, -1] - x[:, -2]

    def _flow(self, h):
        u, v, tu, tv, lap = self.u, self.v, self.tu, self.tv, self.lap
        tu[...] = u
        tv[...] = v
        for m in range(1, self.n_terms + 1):
            self._laplacian(tu, lap)
            np.multiply(tv, h / m, out=tu)
            np.multiply(lap, -(h / m) * self.omega2, out=tv)
            u += tu
            v += tv

    # --- electron ------------------------------------------------------------------------------
    @staticmethod
    def _rotate(p, q, c, s, t1, t2):
        """(p, q) <- (c p + i s q, i s p + c q), in place on strided views."""
        np.multiply(q, s, out=t1)
        t1 *= 1j
        np.multiply(p, s, out=t2)
        t2 *= 1j
        p *= c
        p += t1
        q *= c
        q += t2

    def step(self):
        S, N = self.psi.shape
        k = self.dt / HBAR
        np.subtract(self.u[:, 1:], self.u[:, :-1], out=self.b)
        b = self.b
        # merged outer layer: previous half angle + this step's half angle
        np.multiply(b[:, 0::2], -self.alpha * k / 2, out=self.buf_e)
        self.buf_e += self.t0 * k / 2
        self.th_e += self.buf_e
        rotation(self.th_e, self.ce, self.se)
        self.th_e[...] = self.buf_e
        np.multiply(b[:, 1::2], -self.alpha * k, out=self.th_o)
        self.th_o += self.t0 * k
        rotation(self.th_o, self.co, self.so)
        psi = self.psi
        self._rotate(psi[:, 0::2], psi[:, 1::2], self.ce, self.se, self.t1, self.t2)
        self._rotate(psi[:, 1:-1:2], psi[:, 2::2], self.co, self.so, self.t1[:, :-1], self.t2[:, :-1])
        if self.dynamics == "wow":
            self._flow(self.dt)

    def finish(self):
        """Apply the pending half layer and move the lattice back to the final time."""
        rotation(self.th_e, self.ce, self.se)
        self._rotate(self.psi[:, 0::2], self.psi[:, 1::2], self.ce, self.se, self.t1, self.t2)
        self.th_e[...] = 0
        if self.dynamics == "wow":
            self._flow(-self.dt / 2)
        return self.psi


def propagate(psi, u, v, *, t0, alpha, dt, omega2, n_terms, dynamics, steps):
    """Copy the inputs, run ``steps`` steps, return (ψ, u)."""
    st = Stepper(psi.copy(), u.copy(), v.copy(), t0, alpha, dt, omega2, n_terms, dynamics)
    for _ in range(steps):
        st.step()
    return st.finish(), st.u


def time_file(path, repeats: int) -> float:
    """Sample*site*steps per second of ``propagate`` on the inputs saved in ``path`` (an .npz from
    benchmarks/throughput.py): the median of ``repeats`` timed calls after one warm-up."""
    import time

    z = np.load(path)
    kw = dict(t0=z["t0"][()], alpha=z["alpha"][()], dt=z["dt"][()], omega2=z["omega2"][()],
              n_terms=int(z["n_terms"]), dynamics=str(z["dynamics"]), steps=int(z["steps"]))
    run = lambda: propagate(z["psi"], z["u"], z["v"], **kw)
    run()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        ts.append(time.perf_counter() - t0)
    return z["psi"].size * kw["steps"] / float(np.median(ts))


if __name__ == "__main__":  # run alone, in its own process, so that no JAX thread shares the cores
    import sys

    print(time_file(sys.argv[1], int(sys.argv[2])))
