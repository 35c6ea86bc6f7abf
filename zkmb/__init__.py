"""zkmb: a zero-knowledge middlebox for encrypted DNS."""

__version__ = "0.1.0"
