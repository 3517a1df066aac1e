"""``python3 -m train``: command-line entry point."""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from train.kfp_executor import parse_executor_input, write_executor_output
from train.model import fit, read_dataset, save


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="train", description="Fit LogisticRegression on a training CSV "
                                  "and write the model with joblib.")
    parser.add_argument("--train", type=Path, required=True, help="training CSV (from preprocess)")
    parser.add_argument("--model-out", type=Path, required=True, help="model file to write")
    parser.add_argument("--c", type=_positive(float), default=1.0,
                        help="inverse regularisation strength C (default: 1.0)")
    parser.add_argument("--max-iter", type=_positive(int), default=200,
                        help="maximum solver iterations (default: 200)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default: 42)")
    parser.add_argument("--executor-input", type=parse_executor_input, metavar="JSON",
                        help="KFP ExecutorInput ({{$}} placeholder): also write the "
                             "task's executor output file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        x, y = read_dataset(args.train)
    except (OSError, ValueError) as exc:
        parser.exit(1, f"train: error: cannot read training data: {exc}\n")
    model = fit(x, y, args.c, args.max_iter, args.seed)
    save(model, args.model_out)
    print(f"trained on {len(y)} rows, {x.shape[1]} features "
          f"(train accuracy {model.score(x, y):.4f}); wrote {args.model_out}")
    if args.executor_input is not None:
        write_executor_output(args.executor_input)
    return 0
