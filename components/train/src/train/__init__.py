"""Fit a logistic-regression classifier on a preprocessed training CSV."""
