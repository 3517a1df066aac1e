"""Planted secrets never leave mlops (issue 7)."""
