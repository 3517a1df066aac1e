"""Split and standardise scikit-learn's bundled breast-cancer data set."""
