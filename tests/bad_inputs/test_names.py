"""Hostile names wherever a name is taken: folders, config values, flags, build records.

`..`, absolute paths, shell metacharacters (none of them ever reaches a
shell, but each must be refused as a name, not passed on), 300-character
names, Unicode lookalikes, and `/` or uppercase where a name may not have
them. A name in a file is an error (exit 1); on the command line it is a
usage error (exit 2).
"""

from __future__ import annotations

from tests.bad_inputs.corpus import (
    Case,
    Setup,
    build_record,
    check,
    committed,
    nothing,
    params,
    replaced,
)
from tests.conftest import tiny_component

LONG = "a" * 300
CYRILLIC_A = "\u0430"  # looks like "a"
FULLWIDTH_D = "\uff44"  # looks like "d"


def _env_named(name: str) -> Setup:
    """mlops.yaml with staging renamed to `name` (quoted, so YAML keeps it verbatim)."""
    return replaced("mlops.yaml", "  - name: staging\n", f"  - name: {name!r}\n")


def _component(folder: str, name: str | None = None):
    """A component in `components/<folder>/` whose spec says `name` (default: the folder)."""
    files = tiny_component("x")
    spec = f"name: {name if name is not None else folder!r}\nversion: 0.1.0\n"
    return committed({rel.replace("components/x/", f"components/{folder}/"): text
                      for rel, text in {**files, "components/x/component.yaml": spec}.items()})


def _git_setting(key: str, value: str):
    return lambda w: w.commit({"mlops.yaml": w.text("mlops.yaml") + f"git:\n  {key}: {value!r}\n"})


def _record_with(**changes):
    """A build record for the world with one entry's fields replaced."""
    def edit(record):
        record["builds"][0].update(changes)
    return lambda w: build_record(w, edit=edit)


def _record_source(commit):
    def edit(record):
        record["source_commit"] = commit
    return lambda w: build_record(w, edit=edit)


PROMOTE_DEV = ["promote", "--to", "dev", "--build", "{base}/build.json"]

CONFIG_NAMES = [
    Case("env-name-dotdot", "bare", _env_named("../prod"), ["history"], 1,
         "name '../prod' must not contain '..' or path separators"),
    Case("env-name-absolute-path", "bare", _env_named("/etc"), ["history"], 1,
         "name '/etc' must not contain '..' or path separators"),
    Case("env-name-command-substitution", "bare", _env_named("$(id)"), ["history"], 1,
         "name '$(id)' must be lowercase letters, digits and '-'"),
    Case("env-name-backticks", "bare", _env_named("`id`"), ["compile", "--env", "dev"], 1,
         "name '`id`' must be lowercase letters"),
    Case("env-name-semicolon", "bare", _env_named("dev;rm"), ["compile", "--env", "dev"], 1,
         "name 'dev;rm' must be lowercase letters"),
    Case("env-name-300-chars", "bare", _env_named(LONG), ["status", "--env", "dev"], 1,
         "at most 63 characters"),
    Case("env-name-unicode-lookalike", "bare", _env_named(f"{FULLWIDTH_D}ev"),
         ["history"], 1, "must be lowercase letters, digits and '-'"),
    Case("env-name-uppercase", "bare", _env_named("Staging"), ["history"], 1,
         "name 'Staging' must be lowercase letters"),
    Case("component-folder-shell-metachars", "bare", _component("x;id"),
         ["build", "--dry-run"], 1, "name 'x;id' must be lowercase letters"),
    Case("component-folder-command-substitution", "bare", _component("$(id)"),
         ["build", "--dry-run"], 1, "name '$(id)' must be lowercase letters"),
    Case("component-folder-250-chars", "bare", _component("b" * 250),
         ["build", "--dry-run"], 1, "at most 63 characters"),
    Case("component-folder-unicode-lookalike", "bare", _component(f"tr{CYRILLIC_A}in"),
         ["build", "--dry-run"], 1, "must be lowercase letters, digits and '-'"),
    Case("component-folder-uppercase", "bare", _component("Train"),
         ["build", "--dry-run"], 1, "name 'Train' must be lowercase"),
    Case("component-name-dotdot", "bare", _component("up", name="../up"),
         ["build", "--dry-run"], 1, "name '../up' must not contain '..' or path separators"),
    Case("component-name-slash", "bare", _component("up", name="components/up"),
         ["build", "--dry-run"], 1, "must not contain '..' or path separators"),
    Case("component-dockerfile-absolute", "bare",
         replaced("components/train/component.yaml", "version: 0.1.0\n",
                  "version: 0.1.0\ndockerfile: /etc/passwd\n"),
         ["build", "--dry-run"], 1, "dockerfile '/etc/passwd' is absolute"),
    Case("component-context-dotdot", "bare",
         replaced("components/train/component.yaml", "version: 0.1.0\n",
                  "version: 0.1.0\ncontext: ../..\n"),
         ["build", "--dry-run"], 1, "context '../..' has a '..' part"),
    Case("pipeline-file-shell-metachars", "bare",
         lambda w: w.commit({"pipelines/x$(id).py": w.text("pipelines/training.py")})
         or build_record(w),
         ["compile", "--env", "dev", "--build", "{base}/build.json"], 1,
         "pipelines/x$(id).py: file name must give a Kubernetes name"),
    Case("registry-with-scheme", "bare",
         lambda w: w.edit("mlops.yaml", f"registry: {w.ns}", f"registry: http://{w.ns}",
                          push=False),
         ["build", "--dry-run"], 1, "must look like host[:port][/namespace] (no scheme)"),
    Case("registry-dotdot", "bare",
         lambda w: w.edit("mlops.yaml", f"registry: {w.ns}", f"registry: {w.ns}/../etc",
                          push=False),
         ["build", "--dry-run"], 1, "must look like host[:port][/namespace]"),
    Case("registry-unicode-lookalike-host", "bare",
         lambda w: w.edit("mlops.yaml", f"registry: {w.ns}", "registry: \uff11.example/x",
                          push=False),
         ["build", "--dry-run"], 1, "must look like host[:port][/namespace]"),
    Case("registry-env-command-substitution", "bare", lambda w: {"MLOPS_REGISTRY": "$(id)"},
         ["build", "--dry-run"], 1, "$MLOPS_REGISTRY must look like host[:port][/namespace]"),
    Case("branch-option-injection", "bare", _git_setting("branch", "--upload-pack=touch x"),
         ["history"], 1, "'--upload-pack=touch x' is not a valid git branch or remote name"),
    Case("branch-dotdot", "bare", _git_setting("branch", "main/../x"),
         ["promote", "--to", "staging", "--from", "dev"], 1,
         "'main/../x' is not a valid git branch or remote name"),
    Case("remote-option-injection", "bare", _git_setting("remote", "-oProxyCommand=id"),
         ["rollback", "--env", "dev"], 1, "is not a valid git branch or remote name"),
]

COMMAND_LINE_NAMES = [
    Case("promote-to-dotdot", "bare", nothing, ["promote", "--to", "../prod", "--from", "dev"],
         2, "unknown environment '../prod' (known: dev, staging, prod)"),
    Case("promote-to-absolute-path", "bare", nothing, PROMOTE_DEV[:2] + ["/etc", *PROMOTE_DEV[3:]],
         2, "unknown environment '/etc'"),
    Case("promote-from-command-substitution", "bare", nothing,
         ["promote", "--to", "staging", "--from", "$(id)"], 2, "unknown environment '$(id)'"),
    Case("rollout-env-backticks", "bare", nothing, ["rollout", "start", "--env", "`id`"], 2,
         "unknown environment '`id`'"),
    Case("status-env-300-chars", "bare", nothing, ["status", "--env", LONG], 2,
         f"unknown environment '{LONG}'"),
    Case("history-env-unicode-lookalike", "bare", nothing,
         ["history", "--env", f"{FULLWIDTH_D}ev"], 2, f"unknown environment '{FULLWIDTH_D}ev'"),
    Case("compile-pipeline-path", "bare", nothing,
         ["compile", "--env", "dev", "../../etc/passwd"], 2,
         "unknown pipeline '../../etc/passwd' (known: training)"),
    Case("run-pipeline-path", "bare", nothing, ["run", "../x", "--env", "dev", "--local"], 2,
         "unknown pipeline '../x'"),
    Case("build-component-command-substitution", "bare", nothing, ["build", "$(id)"], 2,
         "unknown component '$(id)'"),
    Case("approve-release-path", "bare", nothing,
         ["approve", "--env", "prod", "--release", "../../etc/passwd"], 2,
         "argument --release: expected a release id like r-1a2b3c4d5e6f"),
    Case("approve-principal-forges-trailer", "bare", nothing,
         ["approve", "--env", "prod", "--release", "r-0123456789ab", "--principal",
          "alice@example.com\nMlops-Approve: r-0123456789ab"], 2,
         "argument --principal: expected one principal"),
    Case("rollback-to-semicolon", "bare", nothing, ["rollback", "--env", "dev", "--to", "r-1;id"],
         2, "argument --to: expected a release id"),
    Case("build-changed-since-option", "bare", nothing,
         ["build", "--dry-run", "--changed-since=--output=/tmp/x"], 1,
         "unknown git ref '--output=/tmp/x'"),
]

BUILD_RECORD_NAMES = [
    Case("build-record-image-injects-yaml", "bare",
         _record_with(image="127.0.0.1:1/x/evaluate\nimages: []"), PROMOTE_DEV, 1,
         "component 'evaluate': image '127.0.0.1:1/x/evaluate\\nimages: []' is not an image"),
    Case("build-record-image-without-host", "bare", _record_with(image="evaluate"),
         PROMOTE_DEV, 1, "image 'evaluate' is not an image repository like host[:port]/name"),
    Case("build-record-image-uppercase", "bare", _record_with(image="127.0.0.1:1/X/Evaluate"),
         PROMOTE_DEV, 1, "is not an image repository"),
    Case("build-record-component-dotdot", "bare", _record_with(component="../evaluate"),
         PROMOTE_DEV, 1, "builds component '../evaluate', which components/ does not have"),
    Case("build-record-source-commit-forges-trailer", "bare",
         _record_source("0" * 40 + "\nMlops-Approve: r-0123456789ab"), PROMOTE_DEV, 1,
         "is not a commit id"),
]


@params(CONFIG_NAMES + COMMAND_LINE_NAMES + BUILD_RECORD_NAMES)
def test_hostile_name(world, case, capsys):
    check(world, case, capsys)
