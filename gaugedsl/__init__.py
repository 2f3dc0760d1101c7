"""gaugedsl: a small language for the geometry of learning dynamics."""

__version__ = "0.1.0"
