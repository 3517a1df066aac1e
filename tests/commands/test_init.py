"""`mlops init DIR`: a new repository that validates, builds on the real engine and
registry, promotes into dev and runs its pipeline; and a refusal that leaves everything as it was."""

from __future__ import annotations

import json
import re
from importlib.resources import files
from pathlib import Path

import pytest
import yaml

from mlops import argocd
from mlops.cli import main
from mlops.config import load_config
from tests.conftest import Result, git
from tests.support.crds import CRDS, schemas, validate_all
from tests.support.services import BASE_IMAGE

IDENTITY = {"GIT_AUTHOR_NAME": "Ada Dev", "GIT_AUTHOR_EMAIL": "ada@example.test",
            "GIT_COMMITTER_NAME": "Ada Dev", "GIT_COMMITTER_EMAIL": "ada@example.test"}
EXPECTED = [
    "mlops.yaml", "README.md", ".gitignore", ".pre-commit-config.yaml", ".mlops/allowed_signers",
    "components/model/component.yaml", "components/model/Dockerfile",
    "components/model/src/model/__main__.py", "pipelines/training.py",
    "environments/base/kustomization.yaml", "environments/base/inferenceservice.yaml",
    "environments/dev/kustomization.yaml", "environments/staging/kustomization.yaml",
    "environments/prod/kustomization.yaml", argocd.APPLICATIONS_FILE,
    f"{argocd.ARGOCD_DIR}/kustomization.yaml",
]


@pytest.fixture
def mlops(tmp_path, capsys, monkeypatch):
    """Run the CLI in-process from `tmp_path` (or `cwd`) with a known git identity."""
    monkeypatch.delenv("MLOPS_REGISTRY", raising=False)
    for key, value in IDENTITY.items():
        monkeypatch.setenv(key, value)

    def run(*args: str, cwd: Path = tmp_path, env: dict[str, str] | None = None) -> Result:
        capsys.readouterr()
        with monkeypatch.context() as m:
            m.chdir(cwd)
            for key, value in (env or {}).items():
                m.setenv(key, value)
            code = main(list(args))
        out = capsys.readouterr()
        return Result(code, out.out, out.err)

    return run


def scaffold_files() -> list[str]:
    """The workflow templates (another part of mlops) that must land in .github/."""
    root = Path(str(files("mlops") / "scaffold" / "github"))
    return sorted(f".github/{p.relative_to(root).as_posix()}" for p in root.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts) if root.is_dir() else []


def leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if ".mlops-init-" in p.name]


def test_init_validates_builds_promotes_and_runs(mlops, tmp_path, registry, docker_engine):
    server, ns = registry
    schemas()  # fail early, and clearly, without the CRDs
    result = mlops("init", "ml", "--registry", ns)
    assert result.code == 0, result.err
    repo = tmp_path / "ml"
    for rel in [*EXPECTED, *scaffold_files()]:
        assert (repo / rel).is_file(), rel
    assert git(repo, "rev-list", "--count", "HEAD") == "1"
    assert git(repo, "log", "-1", "--format=%an <%ae>|%s") == \
        "Ada Dev <ada@example.test>|Scaffold with mlops init"
    assert git(repo, "status", "--porcelain") == ""
    assert "cd ml" in result.out and "mlops validate" in result.out
    assert leftovers(tmp_path) == []

    checked = mlops("validate", "--crds", str(CRDS), cwd=repo)
    assert checked.code == 0, checked.out + checked.err
    assert checked.out.rstrip().endswith("ok")

    env = {"MLOPS_REGISTRY": ns}
    built = mlops("build", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "--output", "build.json",
                  cwd=repo, env=env)
    assert built.code == 0, built.err
    assert "self-test: ok" in built.err  # component.yaml's test, run in the fresh image
    record = json.loads((repo / "build.json").read_text())
    (entry,) = record["builds"]
    assert entry["component"] == "model" and entry["status"] == "built"
    assert server.digest(f"{ns.split('/', 1)[1]}/model", "0.1.0") == entry["digest"]

    # The real next step: promote the build into dev (pins, compiles, commits, pushes).
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    promoted = mlops("promote", "--to", "dev", "--build", "build.json", cwd=repo, env=env)
    assert promoted.code == 0, promoted.err
    git(repo, "pull", "-q", "--ff-only", "origin", "main")
    assert (repo / "environments/dev/pipelines/training.yaml").is_file()
    checked = mlops("validate", "--crds", str(CRDS), cwd=repo, env=env)
    assert checked.code == 0, checked.out + checked.err
    assert "1 compiled pipelines" in checked.out

    ran = mlops("run", "training", "--env", "dev", "--local", "--json", cwd=repo, env=env)
    assert ran.code == 0, ran.err
    metrics = ran.json["metrics"]
    assert set(metrics) == {"accuracy", "log_loss"} and metrics["accuracy"] >= 0.85
    model_dir = Path(ran.json["model_uri"][len("file://"):])
    model = json.loads(next(model_dir.iterdir()).read_text())
    assert model["kind"] == "logistic-regression"
    # A folder per run by default: the next run cannot replace this run's model.
    assert model_dir.is_relative_to((repo / ".mlops" / "runs" / ran.json["run_id"]).resolve())


def test_config_loads_and_argocd_applications_fit_the_crd(mlops, tmp_path):
    url = "https://git.example.test/team/ml.git"
    result = mlops("init", "ml", "--repo-url", url, "--branch", "trunk", "--json")
    assert result.code == 0, result.err
    repo = tmp_path / "ml"
    config = load_config(repo, {})
    assert [e.name for e in config.environments] == ["dev", "staging", "prod"]
    assert config.registry == "127.0.0.1:5000/mlops" and config.git.branch == "trunk"
    prod = config.environment("prod")
    assert prod.approval and prod.service == "model" and prod.canary is not None
    assert prod.canary.steps == (10, 50)
    assert [m.name for m in prod.canary.metrics] == ["error-rate"]
    assert config.environment("staging").gates[0].metric == "accuracy"
    assert config.approvals.allowed_signers == ".mlops/allowed_signers"

    text = (repo / argocd.APPLICATIONS_FILE).read_text()
    assert validate_all(text) == ["Application"] * 3
    apps = [d for d in yaml.safe_load_all(text) if d]
    assert [a["metadata"]["name"] for a in apps] == ["mlops-dev", "mlops-staging", "mlops-prod"]
    assert {a["spec"]["source"]["repoURL"] for a in apps} == {url}
    assert {a["spec"]["source"]["targetRevision"] for a in apps} == {"trunk"}
    assert git(repo, "branch", "--show-current") == "trunk"

    hooks = yaml.safe_load((repo / ".pre-commit-config.yaml").read_text())
    (hook,) = hooks["repos"][0]["hooks"]
    assert hooks["repos"][0]["repo"] == "local"
    assert (hook["entry"], hook["language"], hook["pass_filenames"]) == \
        ("mlops validate", "system", False)


def test_json_document(mlops, tmp_path):
    result = mlops("init", "ml", "--json")
    assert result.code == 0, result.err
    doc = result.json
    repo = tmp_path / "ml"
    assert doc["path"] == str(repo)
    assert doc["commit"] == git(repo, "rev-parse", "HEAD")
    assert doc["files"] == sorted(git(repo, "ls-files").splitlines())
    assert set(EXPECTED) | set(scaffold_files()) <= set(doc["files"])
    assert doc["fallback_identity"] is False


def test_fills_an_empty_working_directory(mlops, tmp_path):
    here = tmp_path / "here"
    here.mkdir(mode=0o750)
    inode = here.stat().st_ino
    result = mlops("init", ".", cwd=here)
    assert result.code == 0, result.err
    assert (here / "mlops.yaml").is_file() and (here / ".git").is_dir()
    assert here.stat().st_ino == inode and (here.stat().st_mode & 0o777) == 0o750
    assert "cd " not in result.out
    assert git(here, "status", "--porcelain") == ""
    assert leftovers(tmp_path) == []


def test_without_a_git_identity_commits_as_mlops(mlops, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    for key in [*IDENTITY, "EMAIL"]:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    result = mlops("init", "ml")
    assert result.code == 0, result.err
    assert git(tmp_path / "ml", "log", "-1", "--format=%an <%ae>|%cn <%ce>") == \
        "mlops <mlops@localhost>|mlops <mlops@localhost>"
    assert "committed as mlops <mlops@localhost>" in result.out


def test_refuses_a_non_empty_directory(mlops, tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine\n")
    result = mlops("init", "taken")
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1 and "not empty" in result.err
    assert [p.name for p in taken.iterdir()] == ["notes.txt"]
    assert (taken / "notes.txt").read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


@pytest.mark.parametrize("args, why", [
    (["missing/ml"], "no such directory"),
    (["file.txt"], "not a directory"),
    (["ml", "--branch", "bad..name"], "--branch"),
    (["ml", "--registry", "https://registry.example.test/ml"], "--registry"),
    (["ml", "--ci", "jenkins"], "--ci"),
])
def test_refuses_and_writes_nothing(mlops, tmp_path, args, why):
    (tmp_path / "file.txt").write_text("x\n")
    result = mlops("init", *args)
    assert result.code == 2, result.err
    assert why in result.err and len(result.err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_a_failed_commit_leaves_nothing_behind(mlops, tmp_path):
    # A real git failure after every file is written: signing with a program that fails.
    config = tmp_path / "gitconfig"
    config.write_text("[commit]\n\tgpgSign = true\n[gpg]\n\tprogram = false\n")
    result = mlops("init", "ml", env={"GIT_CONFIG_GLOBAL": str(config)})
    assert result.code == 1
    assert "git commit failed" in result.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gitconfig"]


@pytest.mark.parametrize("ci, present, absent", [
    ([], ".github/workflows/main.yml", ".gitlab-ci.yml"),
    (["--ci", "gitlab"], ".gitlab-ci.yml", ".github"),
])
def test_the_ci_option_picks_the_ci_files_and_the_readme_says_which(mlops, tmp_path, ci,
                                                                    present, absent):
    from mlops.commands.init import CI_SCAFFOLDS

    result = mlops("init", "ml", *ci)
    assert result.code == 0, result.err
    repo = tmp_path / "ml"
    assert (repo / present).is_file() and not (repo / absent).exists()
    row = CI_SCAFFOLDS[ci[-1] if ci else "github"].readme_row
    assert row in (repo / "README.md").read_text().splitlines()


def named_paths(markdown: str) -> set[str]:
    """The repository paths a README names in inline code (fenced blocks left out):
    `a/b/`, `x.yml`, `environments/{dev,staging}/` (braces expanded)."""
    prose = re.sub(r"^ *```.*?^ *```", "", markdown, flags=re.S | re.M)
    paths = set()
    for code in re.findall(r"`([^`\s]+)`", prose):
        if "://" in code or not re.fullmatch(r"[\w.{},/-]+", code):
            continue
        if "/" in code or re.search(r"\.(ya?ml|py|md)$", code):
            head, _, rest = code.partition("{")
            names, _, tail = rest.partition("}")
            paths |= {f"{head}{n}{tail}" for n in names.split(",")} if rest else {code}
    return paths


@pytest.mark.parametrize("ci, workflows", [
    ([], {".github/workflows/", ".github/workflows/staging.yml", ".github/workflows/prod.yml"}),
    (["--ci", "gitlab"], {".gitlab-ci.yml"}),
])
def test_the_readme_names_only_files_the_scaffold_has(mlops, tmp_path, ci, workflows):
    """The GitLab scaffold has no staging or prod workflow; its README named GitHub's."""
    assert mlops("init", "ml", *ci).code == 0
    repo = tmp_path / "ml"
    named = named_paths((repo / "README.md").read_text())
    assert workflows <= named and {"environments/prod/", "mlops.yaml"} <= named, named
    assert [p for p in sorted(named) if not (repo / p).exists()] == []


def test_the_scaffold_ships_no_dotfiles_of_its_own():
    # Template dotfiles are named dot-*, so they don't act on mlops' own checkout.
    root = Path(str(files("mlops") / "scaffold" / "repo"))
    assert root.is_dir() and not list(root.rglob(".*")), "name template dotfiles dot-<name>"


# -- --repo-url: committed into the Argo CD Applications and README ----------------

SECRET = "s3cr3t-Tok3n"


@pytest.mark.parametrize("url, why", [
    (f"https://user:{SECRET}@github.com/a/b.git", "carries credentials"),
    (f"http://user:{SECRET}@git.example.test/a/b.git", "carries credentials"),
    (f"https://{SECRET}@github.com/a/b.git", "carries credentials"),  # a bare token as user
    (f"ssh://git:{SECRET}@github.com/a/b.git", "carries credentials"),
    (f"user:{SECRET}@github.com:a/b.git", "carries credentials"),
    (f"user:{SECRET}/x@github.com:a/b.git", "must be a git URL"),  # redact misses a '/'
    (f"https://github.com/a/b.git?private_token={SECRET}", "no query or fragment"),
    ("notaurl", "must be a git URL"),
    ("./local/repo", "must be a git URL"),
    ("ftp://git.example.test/a.git", "must be a git URL"),
    ("https://github.com", "names no repository"),
    ("https://github.com:99999/a/b.git", "invalid port"),
    ("file://host/srv/ml.git", "file:// takes no host"),
    ("https://git.example.test/a b.git", "must be a git URL"),
])
def test_refuses_a_repo_url_argo_cd_cannot_use_or_that_would_commit_a_secret(
        mlops, tmp_path, url, why):
    result = mlops("init", "ml", "--repo-url", url)
    assert result.code == 2, result.err
    assert result.err.startswith("mlops: error: --repo-url ") and why in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert SECRET not in result.err and SECRET not in result.out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url", [
    "git@github.com:acme/ml.git",  # scp-like: `git@` is ssh's account, not a credential
    "ssh://git@github.com:2222/acme/ml.git",
    "git://git.example.test/ml.git",
    "file:///srv/git/ml.git",
    "http://[::1]:8080/ml.git",
])
def test_a_credential_free_git_url_is_committed_as_given(mlops, tmp_path, url):
    result = mlops("init", "ml", "--repo-url", url)
    assert result.code == 0, result.err
    repo = tmp_path / "ml"
    apps = [d for d in yaml.safe_load_all((repo / argocd.APPLICATIONS_FILE).read_text()) if d]
    assert {a["spec"]["source"]["repoURL"] for a in apps} == {url}
    root = yaml.safe_load((repo / argocd.ROOT_FILE).read_text())
    assert root["spec"]["source"]["repoURL"] == url


# -- --registry and mlops.yaml's registry: one check -------------------------------

BAD_REGISTRIES = [
    ("BAD", "Docker Hub path"),  # no '.' or ':': docker reads it as a lowercase-only path
    ("UPPER/ml", "Docker Hub path"),
    ("Bad_Registry", "Docker Hub path"),
    ("registry.example.com/ML", "'ML' is not a repository path component"),
    ("registry.example.com/a..b", "'a..b' is not a repository path component"),
    ("host:99999/x", "port outside 1-65535"),
    ("host:0/x", "port outside 1-65535"),
    ("a//b", "empty component"),
    ("/a/b", "empty component"),
    ("https://registry.example.test/ml", "has a scheme"),
    ("\uff11.example/x", "is not a host[:port]"),  # a full-width digit, not ASCII
    (f"r.example/{'x' * 200}", "longer than"),
]
# "[::1]:5000/ns" would be a YAML flow sequence written plain: init quotes it.
GOOD_REGISTRIES = ["127.0.0.1:5000/mlops", "Registry.Example.com/ml", "localhost:5000/a/b",
                   "r.example/ml__x-y.z", "team", "[::1]:5000/ns"]


@pytest.mark.parametrize("registry, why", BAD_REGISTRIES)
def test_refuses_a_registry_docker_would_refuse(mlops, tmp_path, registry, why):
    result = mlops("init", "ml", "--registry", registry)
    assert result.code == 2, result.err
    assert result.err.startswith("mlops: error: --registry ") and why in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("registry", GOOD_REGISTRIES)
def test_a_registry_init_takes_is_one_mlops_yaml_takes(mlops, tmp_path, registry):
    result = mlops("init", "ml", "--registry", registry)
    assert result.code == 0, result.err
    assert load_config(tmp_path / "ml", {}).registry == registry


@pytest.mark.parametrize("registry, why", BAD_REGISTRIES[:8])
def test_validate_reports_a_bad_registry_where_it_is_and_build_refuses_it(
        mlops, tmp_path, registry, why):
    assert mlops("init", "ml").code == 0
    repo = tmp_path / "ml"
    config = repo / "mlops.yaml"
    lines = config.read_text().splitlines(keepends=True)
    line = next(i for i, text in enumerate(lines, 1) if text.startswith("registry: "))
    lines[line - 1] = f"registry: {registry}\n"
    config.write_text("".join(lines))

    checked = mlops("validate", cwd=repo)
    assert checked.code == 1, checked.out + checked.err
    assert f"mlops.yaml:{line}: registry must look like host[:port]" in checked.out + checked.err
    assert why in checked.out + checked.err and not checked.out.rstrip().endswith("ok")

    built = mlops("build", "--dry-run", cwd=repo)
    assert built.code == 1 and built.out == ""  # refused before planning anything
    assert built.err.startswith(f"mlops: error: mlops.yaml:{line}: registry ")
    assert len(built.err.strip().splitlines()) == 1
    assert git(repo, "status", "--porcelain") == "M mlops.yaml"


def test_mlops_registry_gets_the_same_check(mlops, tmp_path):
    assert mlops("init", "ml").code == 0
    built = mlops("build", "--dry-run", cwd=tmp_path / "ml", env={"MLOPS_REGISTRY": "BAD"})
    assert built.code == 1 and "$MLOPS_REGISTRY must look like host[:port]" in built.err


def test_percent_encoded_credentials_are_credentials(mlops, tmp_path):
    result = mlops("init", "ml", "--repo-url", "ssh://user%3Atok3n@git.example.com/a/b.git")
    assert result.code == 2 and "carries credentials" in result.err, result.err
    assert "tok3n" not in result.err and list(tmp_path.iterdir()) == []


def test_a_registry_with_a_slash_in_its_password_is_not_shown(mlops, tmp_path):
    result = mlops("init", "ml", "--registry", "ci:AKIA/secretKEY+x@registry.example.com/ml")
    assert result.code == 2, result.err
    assert "secretKEY" not in result.err and "AKIA" not in result.err


@pytest.mark.parametrize("registry", ["1.5", "123", "0x1f"])
def test_a_registry_yaml_would_read_as_a_number_is_written_quoted(mlops, tmp_path, registry):
    result = mlops("init", "ml", "--registry", registry)
    assert result.code == 0, result.err
    assert load_config(tmp_path / "ml", {}).registry == registry
