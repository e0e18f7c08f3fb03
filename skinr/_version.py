"""The version of skinr, written once: the package, checkpoints and the build read it here."""

__version__ = "0.1.0.dev0"
