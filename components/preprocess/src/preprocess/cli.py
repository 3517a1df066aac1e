"""``python3 -m preprocess``: command-line entry point."""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from preprocess.data import load_dataset, split_and_scale, write_csv
from preprocess.kfp_executor import parse_executor_input, write_executor_output


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="preprocess",
        description="Split the breast-cancer data set (stratified), standardise it "
                    "with a scaler fitted on the training rows, and write CSV files.")
    parser.add_argument("--test-size", type=_fraction, default=0.25,
                        help="fraction of rows held out for testing (default: 0.25)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default: 42)")
    parser.add_argument("--train-out", type=Path, required=True, help="training CSV to write")
    parser.add_argument("--test-out", type=Path, required=True, help="test CSV to write")
    parser.add_argument("--executor-input", type=parse_executor_input, metavar="JSON",
                        help="KFP ExecutorInput ({{$}} placeholder): also write the "
                             "task's executor output file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    x, y, names = load_dataset()
    split = split_and_scale(x, y, names, args.test_size, args.seed)
    write_csv(args.train_out, names, split.x_train, split.y_train)
    write_csv(args.test_out, names, split.x_test, split.y_test)
    print(f"wrote {len(split.y_train)} training rows to {args.train_out} "
          f"and {len(split.y_test)} test rows to {args.test_out}")
    if args.executor_input is not None:
        write_executor_output(args.executor_input)
    return 0
