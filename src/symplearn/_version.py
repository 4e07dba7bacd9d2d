"""The package version, in a module of its own so that nothing imports back up to the package."""

__version__ = "0.2.0"
