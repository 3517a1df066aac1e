"""The command line and the machine around it: bad flags (exit 2), a broken or missing
kubeconfig, an unreachable or empty cluster, `mlops init` into the wrong place, `--repo`
that is no repository. One line each, and nothing written.
"""

from __future__ import annotations

import json
import os
import stat

import pytest

from tests.bad_inputs.corpus import BOMB, Case, check, nothing, params
from tests.support import kubestub as ks

NO_CLUSTER = {"KUBERNETES_SERVICE_HOST": None}


def _kubeconfig(content: str | bytes):
    """A setup pointing $KUBECONFIG at a file with `content`."""
    def setup(world):
        return {**NO_CLUSTER, "KUBECONFIG": str(world.input("kubeconfig", content))}
    return setup


def _no_kubeconfig(world):
    return {**NO_CLUSTER, "KUBECONFIG": None, "HOME": str(world.base)}


def _cluster(server: str) -> str:
    return ("apiVersion: v1\nkind: Config\ncurrent-context: c\n"
            f"clusters: [{{name: c, cluster: {{server: '{server}'}}}}]\n"
            "users: [{name: u, user: {}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n")


def _empty_stub(world):
    """A real (stub) API server that serves nothing: no Argo CD Application, no service."""
    stub = world.kube()
    return {**NO_CLUSTER, "KUBECONFIG": str(stub.kubeconfig(world.base / "kubeconfig"))}


def _application_only(world):
    stub = world.kube()
    stub.put(ks.application("mlops-dev", revision=world.git("rev-parse", "HEAD"),
                            dest_namespace="dev", path="environments/dev"))
    return {**NO_CLUSTER, "KUBECONFIG": str(stub.kubeconfig(world.base / "kubeconfig"))}


def _folder(name: str, *files: str):
    def setup(world):
        (world.base / name).mkdir()
        for rel in files:
            (world.base / name / rel).write_text("mine\n")
    return setup


FLAGS = [
    Case("unknown-command", "bare", nothing, ["deploy"], 2, "invalid choice: 'deploy'"),
    Case("unknown-option", "bare", nothing, ["build", "--frobnicate"], 2,
         "unrecognized arguments: --frobnicate"),
    Case("promote-without-target", "bare", nothing, ["promote", "--from", "dev"], 2,
         "the following arguments are required: --to"),
    Case("promote-with-two-sources", "bare", nothing,
         ["promote", "--to", "dev", "--build", "b.json", "--from", "dev"], 2,
         "argument --from: not allowed with argument --build"),
    # --output replaced what was at the path by rename: as root, even /dev/full (issue 16)
    Case("build-output-is-a-device", "bare", nothing, ["build", "--output", "/dev/full"], 2,
         "--output /dev/full is not a regular file; name a file to write"),
    Case("build-output-is-a-directory", "bare", nothing, ["build", "--output", "{base}"], 2,
         "is a directory; name a file to write"),
    Case("build-output-links-to-a-device", "bare",
         lambda w: (w.base / "record.json").symlink_to("/dev/null"),
         ["build", "--output", "{base}/record.json"], 2, "(-> /dev/null) is not a regular file"),
    # a regular file where none can be made: refused before anything is built or pushed
    Case("build-output-where-nothing-can-be-written", "bare", nothing,
         ["build", "--output", "/proc/version"], 2,
         "--output /proc/version: cannot write in /proc"),
    Case("build-output-with-dry-run", "bare", nothing,
         ["build", "--dry-run", "--output", "{base}/plan.json"], 2,
         "--output writes the build record, which a --dry-run does not make"),
    Case("analyze-output-is-a-device", "canary", nothing,
         ["rollout", "analyze", "--env", "prod", "--output", "/dev/full"], 2,
         "--output /dev/full is not a regular file"),
    Case("build-jobs-zero", "bare", nothing, ["build", "--jobs", "0"], 2,
         "argument -j/--jobs: must be at least 1"),
    Case("build-arg-without-value", "bare", nothing, ["build", "--build-arg", "BASE_IMAGE"], 2,
         "argument --build-arg: expected KEY=VALUE, got 'BASE_IMAGE'"),
    Case("run-without-local", "bare", nothing, ["run", "training", "--env", "dev"], 2,
         "the following arguments are required: --local"),
    Case("run-param-without-value", "bare", nothing,
         ["run", "training", "--env", "dev", "--local", "--param", "c"], 2,
         "argument --param: expected KEY=VALUE"),
    Case("history-env-empty", "bare", nothing, ["history", "--env", ""], 2,
         "unknown environment '' (known: dev, staging, prod)"),
    Case("history-limit-zero", "bare", nothing, ["history", "--limit", "0"], 2,
         "argument --limit: must be at least 1"),
    Case("status-negative-timeout", "bare", nothing,
         ["status", "--env", "dev", "--timeout", "-5"], 2,
         "argument --timeout: must be a positive number of seconds"),
    Case("validate-crds-missing", "bare", nothing, ["validate", "--crds", "{base}/nope"], 2,
         "/world/nope: no such directory"),
    Case("validate-unknown-environment", "bare", nothing, ["validate", "--env", "qa"], 2,
         "unknown environment 'qa' (known: dev, staging, prod)"),
]

CLUSTER = [
    Case("status-without-kubeconfig", "bare", _no_kubeconfig, ["status", "--env", "dev"], 1,
         "no Kubernetes configuration: set $KUBECONFIG"),
    Case("status-kubeconfig-syntax-error", "bare", _kubeconfig("clusters: [1, 2\n"),
         ["status", "--env", "dev"], 1, "is not a valid kubeconfig (ParserError"),
    Case("status-kubeconfig-a-string", "bare", _kubeconfig("just a string\n"),
         ["status", "--env", "dev"], 1, "is not a valid kubeconfig (TypeError"),
    Case("status-kubeconfig-wrong-types", "bare", _kubeconfig("contexts: 5\nclusters: 7\n"),
         ["status", "--env", "dev"], 1, "is not a valid kubeconfig"),
    Case("status-kubeconfig-binary-garbage", "bare", _kubeconfig(b"\xff\xfe\x00" * 50),
         ["status", "--env", "dev"], 1, "is not a valid kubeconfig"),
    Case("status-kubeconfig-bomb-never-expanded", "bare",
         _kubeconfig(_cluster("http://127.0.0.1:9") + BOMB + "preferences: *i\n"),
         ["status", "--env", "dev"], 1, "cannot reach the Kubernetes API at http://127.0.0.1:9",
         process=True),
    Case("status-unknown-context", "bare", _kubeconfig(_cluster("http://127.0.0.1:9")),
         ["status", "--env", "dev", "--context", "nope"], 1,
         "Kubernetes configuration: Invalid kube-config file. Expected object with name nope"),
    Case("status-cluster-unreachable", "bare", _kubeconfig(_cluster("http://127.0.0.1:9")),
         ["status", "--env", "dev"], 1, "cannot reach the Kubernetes API at http://127.0.0.1:9"),
    Case("status-application-missing", "bare", _empty_stub, ["status", "--env", "dev"], 1,
         "Argo CD Application argocd/mlops-dev not found on http://127.0.0.1:"),
    Case("status-service-missing", "bare", _application_only, ["status", "--env", "dev"], 1,
         "InferenceService dev/cancer not found on http://127.0.0.1:"),
]

INIT_AND_REPO = [
    Case("init-into-non-empty-folder", "bare", _folder("full", "notes.txt"),
         ["init", "{base}/full"], 2, "exists and is not empty; mlops init needs a new or empty",
         repo=False, extra=("full",)),
    Case("init-into-a-file", "bare", lambda w: w.input("afile", "x"), ["init", "{base}/afile"],
         2, "afile: exists and is not a directory", repo=False, extra=("afile",)),
    Case("init-parent-missing", "bare", nothing, ["init", "{base}/no/such/dir"], 2,
         "no such directory (create it first)", repo=False),
    Case("init-where-nothing-can-be-made", "bare", nothing, ["init", "/proc/mlops-new"], 1,
         "mlops: error: /proc/mlops-new: No such file or directory", repo=False),
    Case("init-branch-option-injection", "bare", _folder("area"),
         ["init", "{base}/area/new", "--branch=--upload-pack=touch x"], 2,
         "--branch '--upload-pack=touch x': not a valid branch name", repo=False,
         extra=("area",)),
    Case("init-registry-with-scheme", "bare", _folder("area"),
         ["init", "{base}/area/new", "--registry", "https://registry.example.com/ml"], 2,
         "--registry must look like host[:port][/namespace] (no scheme)", repo=False,
         extra=("area",)),
    Case("init-repo-url-with-spaces", "bare", _folder("area"),
         ["init", "{base}/area/new", "--repo-url", "https://x.example/a b.git; id"], 2,
         "--repo-url must be a git URL", repo=False, extra=("area",)),
    Case("repo-is-not-a-repository", "bare", _folder("plain"),
         ["history", "--repo", "{base}/plain"], 1, "not inside a git repository (use --repo DIR)",
         repo=False, extra=("plain",)),
    Case("repo-does-not-exist", "bare", nothing, ["history", "--repo", "{base}/nowhere"], 1,
         "nowhere: no such directory", repo=False),
]


@params(FLAGS + CLUSTER + INIT_AND_REPO)
def test_command_line_and_machine(world, case, capsys):
    check(world, case, capsys)


@pytest.mark.parametrize("args", [["promote", "--to", "qa", "--from", "dev"],
                                  ["status", "--env", "dev", "--timeout", "0"]],
                         ids=["usage-error", "argparse-error"])
def test_json_error_is_one_document(bare, capsys, args):
    """With --json, stdout carries exactly one JSON document, also on errors."""
    from mlops.cli import main

    capsys.readouterr()
    code = main([*args, "--json", "--repo", str(bare.clone)])
    out, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1, err
    assert json.loads(out) == {"ok": False, "error": err.removeprefix("mlops: error: ").strip(),
                               "exit_code": 2}


@pytest.mark.parametrize("args", [["build"], ["build", "--plan", "--shards", "2"]],
                         ids=["build", "build-plan"])
def test_output_never_replaces_a_fifo(bare, capsys, args):
    """A FIFO at --output is refused before anything is built, and left a FIFO."""
    (bare.base / "out").mkdir()
    fifo = bare.base / "out" / "record.json"
    os.mkfifo(fifo)
    # A reader already open: were mlops to open the FIFO for writing, it would neither
    # block (the test cannot hang) nor go unseen (its bytes would be read below).
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        check(bare, Case("output-is-a-fifo", "bare", nothing,
                         [*args, "--output", "{base}/out/record.json"], 2,
                         f"--output {fifo} is not a regular file; name a file to write",
                         extra=("out",)), capsys)  # nothing new under out/: not renamed over
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
        assert os.read(reader, 1) == b""  # no writer now, and nothing was written
    finally:
        os.close(reader)
