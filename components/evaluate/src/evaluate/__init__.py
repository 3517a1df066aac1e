"""Score a trained classifier on the held-out test CSV."""
