"""digest: a daily news digest by email."""

__version__ = "0.1.0"
