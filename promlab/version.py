"""promlab's version, importable without importing anything else of promlab."""

__version__ = "0.1.0"
