"""Architect: an open control plane for AI-assisted software delivery."""

from architect.errors import ArchitectError

__version__ = "0.1.0"
__all__ = ["ArchitectError", "__version__"]
