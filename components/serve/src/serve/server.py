"""``python3 -m serve``: start KServe's model server with the cancer model."""
from __future__ import annotations

import argparse
from collections.abc import Sequence

from kserve import ModelServer, model_server

from serve.metrics import InferenceMetricsMiddleware
from serve.model import CancerModel

DEFAULT_MODEL_DIR = "/mnt/models"


def build_parser() -> argparse.ArgumentParser:
    """KServe's standard flags (--model_name, --http_port, --grpc_port, ...)
    plus --model_dir, as KServe's own model servers do."""
    parser = argparse.ArgumentParser(prog="serve", parents=[model_server.parser])
    parser.add_argument("--model_dir", default=DEFAULT_MODEL_DIR,
                        help="directory holding model.joblib (KServe mounts "
                             "the storageUri at /mnt/models)")
    return parser


def make_server(args: argparse.Namespace) -> ModelServer:
    return ModelServer(
        http_port=args.http_port, grpc_port=args.grpc_port, workers=args.workers,
        max_threads=args.max_threads, max_asyncio_workers=args.max_asyncio_workers,
        enable_grpc=args.enable_grpc, enable_docs_url=args.enable_docs_url,
        enable_latency_logging=args.enable_latency_logging,
        access_log_format=args.access_log_format, event_loop=args.event_loop,
        timeout_keep_alive=args.timeout_keep_alive,
        ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    model = CancerModel(args.model_name, args.model_dir)
    model.load()
    model_server.app.add_middleware(InferenceMetricsMiddleware, model_names=[model.name])
    make_server(args).start([model])
    return 0
