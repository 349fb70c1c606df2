"""``frozen``: the lattice stays at its thermal sample for the whole run (static disorder)."""


def step(psi, lat, p, layout, evolve):
    return evolve(psi, lat.u), lat
