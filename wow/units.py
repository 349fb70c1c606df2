"""Physical constants and unit conventions (docs/model.md).

The user-facing surface speaks eV, Å, fs, amu and K. Inside the engine the same units are kept,
with masses converted once to eV·fs²/Å² so that p²/(2M) is in eV for p in eV·fs/Å.
Momenta (ħk, P_R, mode momenta P_j) are therefore all in eV·fs/Å; velocities in Å/fs.
"""

HBAR = 0.6582119569  # eV·fs
KB = 8.617333262e-5  # eV/K
AMU = 103.642697  # eV·fs²/Å² per amu: 1 amu·Å²/fs² = 103.642697 eV


def mass_ev(mass_amu):
    """A mass in amu expressed in eV·fs²/Å² (so that p²/2M is in eV with p in eV·fs/Å)."""
    return mass_amu * AMU
M_E = 0.0568563  # eV·fs²/Å², the electron mass (ħ²/2m_e = 3.80998 eV·Å²)
