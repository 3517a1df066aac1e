"""Adapters: one module per outside system, the only importer of its SDK or runner of its
tool (docker, the registry's HTTP API, git, kfp, Kubernetes, Prometheus, kubectl,
ssh-keygen, YAML parsers). Retries, timeouts and redaction live here, once per system."""
