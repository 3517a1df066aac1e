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


def test_the_console_script_collects_cycles_less_often_than_main_does():
    probe = ("import gc, mlops.cli as cli\n"
             "cli.main = lambda: print(gc.get_threshold()[0]) or 0\n"
             "print(gc.get_threshold()[0])\n"
             "cli.run()\n")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    default, in_run = proc.stdout.split()  # the interpreter's own, then run()'s
    assert default != "20000" and in_run == "20000"


# -- the quick exit (mlops.cli.run) ---------------------------------------------------

QUICK_EXIT_PROBE = """
import atexit, os, sys, threading, time
import mlops.cli

class TornDown:  # a module-level object: only the usual exit's teardown deletes it
    def __del__(self):
        os.write(1, b"torn down\\n")

marker = TornDown()
atexit.register(lambda: os.write(1, b"exit handler ran\\n"))
print("buffered output", end="\\n" if sys.argv[1] else "")  # a pipe: still in the buffer
if sys.argv[1] == "thread":
    def late():
        time.sleep(0.3)
        os.write(1, b"thread finished\\n")
    threading.Thread(target=late).start()  # not a daemon: the usual exit waits for it
sys.argv = ["mlops"]  # no command: the help on stderr, exit 2
mlops.cli.run()
"""


def probe_quick_exit(mode: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", QUICK_EXIT_PROBE, mode], capture_output=True,
                          text=True, timeout=60)


def test_the_console_script_skips_the_teardown_but_not_the_exit_handlers_or_the_output():
    proc = probe_quick_exit("")
    assert proc.returncode == 2  # main's exit code
    assert "usage: mlops" in proc.stderr or "COMMAND" in proc.stderr
    assert proc.stdout.startswith("buffered output")  # flushed before os._exit
    assert "exit handler ran" in proc.stdout
    assert "torn down" not in proc.stdout  # no teardown: the time it took is saved


def test_a_running_thread_gets_the_usual_exit():
    proc = probe_quick_exit("thread")
    assert proc.returncode == 2
    lines = proc.stdout.splitlines()
    assert lines[0] == "buffered output" and "thread finished" in lines
    assert lines.count("exit handler ran") == 1  # run once, not by both exits
    assert "torn down" in lines  # the usual teardown


def test_the_entry_points_use_the_quick_exit():
    """`mlops` (pyproject's console script) and `python -m mlops` both end through run."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    assert 'mlops = "mlops.cli:run"' in (root / "pyproject.toml").read_text()
    assert "run()" in (root / "mlops" / "__main__.py").read_text()


def test_an_error_naming_a_path_with_control_characters_is_one_escaped_line(capsys, tmp_path):
    """Found by a bad-input hunt: a newline in a path split the error over two lines, and
    an escape sequence from a name reached the terminal."""
    odd = tmp_path / "a\nb\x1b[31m"
    assert main(["validate", "--repo", str(odd)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err, err
    assert err.startswith("mlops: error: ") and "a\\nb\\x1b[31m" in err
