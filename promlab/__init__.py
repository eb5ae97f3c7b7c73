"""promlab: Prometheus as a Jupyter-native analysis environment."""

from promlab.errors import PromlabError

__version__ = "0.1.0"

__all__ = ["PromlabError", "__version__"]
