import subprocess
import sys

from mlops import __version__
from mlops.cli import main


def test_help_lists_build_and_exit_codes(capsys):
    try:
        main(["--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out
    assert "build" in out and "4  approval missing or invalid" in out


def test_build_help_documents_the_options(capsys):
    try:
        main(["build", "--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out
    for flag in ("--dry-run", "--no-push", "--changed-since", "--build-arg", "--output",
                 "--jobs", "--repo", "--json"):
        assert flag in out


def test_no_command_is_a_usage_error(capsys):
    assert main([]) == 2


def test_unknown_flag_is_one_line_exit_2(capsys):
    assert main(["build", "--bogus"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unrecognized arguments: --bogus" in err


def test_console_script_runs():
    proc = subprocess.run([sys.executable, "-m", "mlops", "--version"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == f"mlops {__version__}"
