"""``python3 -m evaluate``: command-line entry point."""
from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import joblib

from evaluate.kfp_executor import parse_executor_input, write_executor_output
from evaluate.scoring import compute_metrics, read_dataset, write_json


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evaluate", description="Compute accuracy, f1 and roc_auc of a model "
                                     "on a held-out CSV and write them as JSON.")
    parser.add_argument("--test", type=Path, required=True, help="test CSV (from preprocess)")
    parser.add_argument("--model", type=Path, required=True, help="joblib model (from train)")
    parser.add_argument("--metrics-out", type=Path, required=True,
                        help='flat JSON to write: {"accuracy": .., "f1": .., "roc_auc": ..}')
    parser.add_argument("--kfp-metrics-out", type=Path,
                        help="also write the metrics to this KFP v2 Metrics artifact path")
    parser.add_argument("--executor-input", type=parse_executor_input, metavar="JSON",
                        help="KFP ExecutorInput ({{$}} placeholder): also write the "
                             "task's executor output file, with the metrics as the "
                             "metadata of its system.Metrics outputs")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        x, y = read_dataset(args.test)
        model = joblib.load(args.model)
    except (OSError, ValueError, EOFError) as exc:
        parser.exit(1, f"evaluate: error: {exc}\n")
    metrics = compute_metrics(model, x, y)
    write_json(args.metrics_out, metrics)
    if args.kfp_metrics_out is not None:
        write_json(args.kfp_metrics_out, metrics)
    if args.executor_input is not None:
        write_executor_output(args.executor_input, metrics)
    print(json.dumps(metrics, sort_keys=True))
    return 0
