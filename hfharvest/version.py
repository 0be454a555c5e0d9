"""hfharvest's version: one place, at the bottom of the layers (the client's User-Agent, the state
and the manifest name it; the package re-exports it)."""

__version__ = "0.1.0"
