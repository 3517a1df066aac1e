"""hack/deps_ok.py: what decides whether hack/setup.sh (and so `.ci/run`) installs."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def deps_ok():
    spec = importlib.util.spec_from_file_location("deps_ok", REPO / "hack" / "deps_ok.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pyproject(tmp_path: Path, deps: list[str], test: list[str]) -> Path:
    (tmp_path / "pyproject.toml").write_text(
        f"[project]\nname = 'x'\ndependencies = {deps!r}\n"
        f"[project.optional-dependencies]\ntest = {test!r}\n")
    return tmp_path


def test_this_checkout_is_installed_with_everything_it_needs():
    proc = subprocess.run([sys.executable, str(REPO / "hack" / "deps_ok.py")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_a_missing_or_too_old_requirement_means_install(tmp_path):
    root = pyproject(tmp_path, ["pyyaml>=6"], ["pytest>=999", "no-such-package-xyz>=1"])
    assert deps_ok().missing(root) == [
        f"pytest {__import__('pytest').__version__} is not >=999",
        "no-such-package-xyz not installed"]


def test_satisfied_requirements_are_fine(tmp_path):
    assert deps_ok().missing(pyproject(tmp_path, ["pyyaml>=5"], ["pytest>=7"])) == []


def test_an_install_from_another_checkout_does_not_count(tmp_path):
    assert deps_ok().installed_here(tmp_path) is False
    assert deps_ok().installed_here(REPO) is True
