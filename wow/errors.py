"""The one exception wow raises for bad input (here so that every module can import it without
import cycles; ``wow.ConfigError`` is the public name)."""


class ConfigError(ValueError):
    """A bad input, found before any work was done."""
