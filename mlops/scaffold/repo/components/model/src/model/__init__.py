"""A tiny classifier, trained and served with the standard library only.

    python3 -m model train --model-out model.json --metrics-out metrics.json
    python3 -m model serve --model-dir DIR
    python3 -m model self-test

Replace the synthetic data and the logistic regression in `core.py` with your
own; keep the command line, which the pipeline and the InferenceService use.
"""

__version__ = "0.1.0"
