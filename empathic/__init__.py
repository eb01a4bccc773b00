"""Empathic: automated, intelligent, two-way business texting."""

__version__ = "0.1.0"
