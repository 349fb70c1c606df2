"""``frozen``: the lattice stays at its thermal sample for the whole run (static disorder)."""

#: The backend only hands ψ to ``evolve``; the core may carry ψ in its own internal form (it
#: also computes a frozen lattice's rotations once, outside the time loop).
READS_PSI = False


def step(psi, lat, p, layout, evolve):
    return evolve(psi, lat.u), lat
