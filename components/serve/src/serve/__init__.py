"""KServe custom predictor for the breast-cancer classifier."""
