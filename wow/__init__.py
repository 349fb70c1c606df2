"""wow (wave-on-wave): an electron wavepacket on a thermal tight-binding chain, the lattice centre
of mass included. Public API; everything else is private to its module."""

from . import devices as devices
from .config import Config as Config, ConfigError as ConfigError, validate as validate
from .electron import Electron as Electron
from .ensemble import EnsembleResult as EnsembleResult, run as run
from .lattice import Chain as Chain
from .units import HBAR as HBAR, KB as KB, AMU as AMU

__version__ = "0.1.0"
