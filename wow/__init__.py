"""wow (wave-on-wave): an electron wavepacket in a crystal whose atoms move, the lattice centre of
mass included. Public API; everything else is private to its module.

Two axes meet in one time loop (wow.propagate): an electron model (wow.models: the tight-binding
chain, selected by a wow.Electron, or the density-density continuum, selected by a wow.Continuum)
and a lattice backend (wow.dynamics: frozen, wow, ehrenfest, quantum, noise; the chain's own lattice
or local modes, wow.LocalModes). ``wow.run(cfg, n_samples)`` runs any pair over thermal samples or
given states.
"""

from . import devices as devices
from .config import Config as Config, ConfigError as ConfigError, validate as validate
from .electron import Electron as Electron
from .ensemble import EnsembleResult as EnsembleResult, InitialState as InitialState, run as run
from .fock import QuantumLattice as QuantumLattice, momentum_modes as momentum_modes
from .dynamics.noise import Noise as Noise
from .lattice import Chain as Chain
from .dynamics.local import LocalModes as LocalModes
from .models.continuum import Continuum as Continuum
from .units import HBAR as HBAR, KB as KB, AMU as AMU

__version__ = "0.1.0"
