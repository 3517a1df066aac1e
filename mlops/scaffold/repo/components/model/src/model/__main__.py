"""Command line: `python3 -m model {train,serve,self-test}`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import core, kfp_executor, selftest, server


def _train(args: argparse.Namespace) -> int:
    model, metrics = core.train(args.samples, args.seed, args.epochs, args.lr)
    core.save(model, args.model_out)
    args.metrics_out.parent.mkdir(parents=True, exist_ok=True)
    args.metrics_out.write_text(json.dumps(metrics) + "\n")
    print(json.dumps(metrics))
    if args.executor_input is not None:
        kfp_executor.write_output(args.executor_input)
    return 0


def _serve(args: argparse.Namespace) -> int:
    try:
        model = core.load(args.model_dir)
    except (OSError, ValueError, KeyError) as exc:
        print(f"model: cannot load a model from {args.model_dir}: {exc}", file=sys.stderr)
        return 1
    httpd = server.make_server(model, args.model_name, args.host, args.port)
    print(f"serving {args.model_name} on http://{args.host}:{httpd.server_address[1]}", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m model")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="fit on synthetic data; write the model and its metrics")
    t.add_argument("--model-out", type=Path, required=True)
    t.add_argument("--metrics-out", type=Path, required=True, help="flat JSON of numbers")
    t.add_argument("--samples", type=int, default=400)
    t.add_argument("--seed", type=int, default=42)
    t.add_argument("--epochs", type=int, default=300)
    t.add_argument("--lr", type=float, default=0.5)
    t.add_argument("--executor-input", type=kfp_executor.parse, help="KFP's {{$}} placeholder")
    t.set_defaults(run=_train)
    s = sub.add_parser("serve", help="serve the model over HTTP (KServe v1 protocol)")
    s.add_argument("--model-name", default="model")
    s.add_argument("--model-dir", type=Path, default=Path("/mnt/models"))
    s.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a server in a container
    s.add_argument("--port", type=int, default=8080)
    s.set_defaults(run=_serve)
    sub.add_parser("self-test", help="train, serve and check it all").set_defaults(
        run=lambda _args: selftest.run())
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
