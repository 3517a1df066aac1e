"""Helpers shared by the scripts in benchmarks/.

Timing (a warm-up, then N timed runs, reported by their median), subprocess
pipelines without a shell, a throwaway local registry, a description of the
machine, and the rewriting of one script's own section of benchmarks/README.md
between `<!-- NAME:start -->` and `<!-- NAME:end -->`.

A benchmark reports; it does not assert. Targets are printed as met or not
met and the script still exits 0. It exits 1 only when it could not measure
(a missing service, a failed setup step).
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
README = BENCH_DIR / "README.md"
LOOPBACK = "127.0.0.1"
# The generated repositories: who commits (no signing, no hooks), and each
# component's Dockerfile.
GIT_ID = ["-c", "user.name=mlops bench", "-c", "user.email=bench@127.0.0.1",
          "-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null"]
DOCKERFILE = "ARG BASE_IMAGE=python:3.11-slim\nFROM ${BASE_IMAGE}\nCOPY src/ /app/\n"


class BenchError(Exception):
    """Setup or measurement failed: the benchmark has no figures to report."""


# -- timing -------------------------------------------------------------------


@dataclass
class Timing:
    """Wall-clock seconds of repeated runs of one thing."""

    name: str
    seconds: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def min(self) -> float:
        return min(self.seconds)

    @property
    def max(self) -> float:
        return max(self.seconds)

    @property
    def runs(self) -> int:
        return len(self.seconds)

    def scaled(self, factor: float, name: str, note: str = "") -> Timing:
        """The same runs multiplied by `factor` (a sample scaled up to the whole)."""
        return Timing(name, [s * factor for s in self.seconds], note)


def measure(
    name: str, fn: Callable[[], object], repeat: int, warmup: int = 1, note: str = ""
) -> Timing:
    """Run `fn` `warmup` times untimed, then `repeat` times timed."""
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    for _ in range(warmup):
        fn()
    timing = Timing(name, note=note)
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        timing.seconds.append(time.perf_counter() - start)
    return timing


def measure_turns(
    items: Sequence[tuple[str, Callable[[], object], str]], repeat: int, warmup: int = 1
) -> list[Timing]:
    """Like `measure` for several things (name, fn, note), run in turns.

    Each round runs every item once, in order: `warmup` untimed rounds, then
    `repeat` timed ones. Load from other work on the machine then falls on all
    of them alike, so the ratios of their medians stay fair.
    """
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    timings = [Timing(name, note=note) for name, _, note in items]
    for round_ in range(warmup + repeat):
        for timing, (_, fn, _) in zip(timings, items, strict=True):
            start = time.perf_counter()
            fn()
            if round_ >= warmup:
                timing.seconds.append(time.perf_counter() - start)
    return timings


def terminate_cleanly(signum: int, _frame: object) -> None:
    """SIGTERM handler: raise SystemExit so finally blocks stop registries, remove temp dirs."""
    raise SystemExit(128 + signum)


def ready_to_run(name: str, problems: Sequence[str]) -> bool:
    """The start of a benchmark that makes its own registry: stop cleanly on SIGTERM, take
    the registry from the generated mlops.yaml (never the caller's $MLOPS_REGISTRY), and
    say why it cannot run, if it cannot."""
    signal.signal(signal.SIGTERM, terminate_cleanly)
    os.environ.pop("MLOPS_REGISTRY", None)
    for problem in problems:
        print(f"{name}: cannot run: {problem}", file=sys.stderr)
    return not problems


def stop(proc: subprocess.Popen) -> None:
    """End a child still running: terminate, then kill after 20 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def fmt_seconds(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def fmt_ratio(ratio: float) -> str:
    return f"{ratio:.0f}×" if ratio >= 100 else f"{ratio:.2f}×" if ratio < 10 else f"{ratio:.1f}×"


# -- processes ----------------------------------------------------------------


def _tail(data: bytes | str | None, lines: int = 15) -> str:
    if not data:
        return ""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return "\n".join(text.strip().splitlines()[-lines:])


def mlops_cli() -> str:
    """The `mlops` console script of this interpreter (not a version-manager shim)."""
    beside = Path(sys.executable).parent / "mlops"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("mlops")
    if not found:
        raise BenchError("the mlops console script is not installed (pip install -e .)")
    return found


def byte_compile(package: str = "mlops") -> None:
    """Write the package's bytecode, as `pip install` does: fresh processes then measure
    mlops, not Python compiling its edited modules again on every start (which it does
    when the environment sets PYTHONDONTWRITEBYTECODE)."""
    run([sys.executable, "-m", "compileall", "-q", str(REPO_ROOT / package)], timeout=300)


def run(
    argv: Sequence[str],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = 600,
    capture: bool = True,
) -> str:
    """Run a command (never through a shell); return stdout; raise BenchError on failure."""
    try:
        proc = subprocess.run(
            list(argv),
            cwd=cwd,
            env=env,
            timeout=timeout,
            stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            check=False,
        )
    except FileNotFoundError:
        raise BenchError(f"{argv[0]}: command not found") from None
    except subprocess.TimeoutExpired:
        raise BenchError(f"{shlex.join(argv)}: timed out after {timeout}s") from None
    if proc.returncode != 0:
        raise BenchError(
            f"{shlex.join(argv)} exited {proc.returncode}\n"
            + (_tail(proc.stderr) or _tail(proc.stdout))
        )
    return proc.stdout.decode("utf-8", "replace") if capture else ""


def run_pipeline(argvs: Sequence[Sequence[str]], cwd: Path | None = None) -> None:
    """`a | b | c` with one Popen per stage and no shell; the last stage's output is dropped."""
    procs: list[subprocess.Popen] = []
    upstream = None
    try:
        for i, argv in enumerate(argvs):
            last = i == len(argvs) - 1
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                stdin=upstream,
                stdout=subprocess.DEVNULL if last else subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            if upstream is not None:
                upstream.close()  # the next stage owns it now, so SIGPIPE reaches the writer
            upstream = proc.stdout
            procs.append(proc)
    except FileNotFoundError as exc:
        raise BenchError(f"{exc.filename}: command not found") from None
    finally:
        if upstream is not None:
            upstream.close()  # a stage failed to start: unblock the one feeding it
        codes = [p.wait() for p in procs]
    if any(codes) or len(procs) != len(argvs):
        pipeline = " | ".join(shlex.join(a) for a in argvs)
        raise BenchError(f"pipeline `{pipeline}` failed: exit codes {codes}")


# -- services -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


class LocalRegistry:
    """CNCF Distribution (`docker-registry serve`) on 127.0.0.1:<free port>, data in workdir."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def start(self) -> LocalRegistry:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: error\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.workdir / 'data'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n"
        )
        with open(self.workdir / "registry.log", "wb") as log:
            try:
                self.proc = subprocess.Popen(
                    ["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT
                )
            except FileNotFoundError:
                raise BenchError("docker-registry is not installed (run hack/setup.sh)") from None
        if not self._wait_ready(20.0):
            self.stop()
            raise BenchError(f"docker-registry did not come up on {self.host}")
        return self

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1):  # noqa: S310
                    return True
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        return False

    def stop(self) -> None:
        if self.proc:
            stop(self.proc)

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def docker_remove_images(repository_prefix: str) -> int:
    """Remove local image tags whose repository starts with `repository_prefix`; best effort."""
    try:
        listing = run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"])
    except BenchError:
        return 0
    refs = [r for r in listing.split() if r.startswith(repository_prefix)]
    for i in range(0, len(refs), 100):
        subprocess.run(
            ["docker", "image", "rm", *refs[i : i + 100]],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
    return len(refs)


# -- the machine --------------------------------------------------------------


def tool_version(argv: Sequence[str]) -> str:
    try:
        return run(argv, timeout=30).strip().splitlines()[0]
    except (BenchError, IndexError):
        return "unknown"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def nproc() -> int:
    try:
        return len(os.sched_getaffinity(0))  # what `nproc` prints
    except AttributeError:
        return os.cpu_count() or 1


def _cpu_times() -> tuple[int, int]:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields), idle


def cpu_busy(seconds: float = 2.0) -> float | None:
    """The fraction of all CPUs busy over the next `seconds` (None off Linux).

    Taken just before measuring: other work on the machine makes figures
    noisy (the load average would still count our own set-up).
    """
    try:
        total0, idle0 = _cpu_times()
        time.sleep(seconds)
        total1, idle1 = _cpu_times()
    except (OSError, ValueError, IndexError):
        return None
    total = total1 - total0
    return (total - (idle1 - idle0)) / total if total > 0 else None


def machine() -> dict[str, str]:
    return {
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(nproc()),
        "cpu": cpu_model(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": f"{platform.system()} {platform.release()}",
    }


def project_revision(paths: Sequence[str] = ("mlops",)) -> str:
    """The last commit that changed `paths`, and whether they have uncommitted changes."""
    try:
        last = run(["git", "log", "-1", "--format=%h", "--", *paths], cwd=REPO_ROOT).strip()
        dirty = run(["git", "status", "--porcelain", "--", *paths], cwd=REPO_ROOT).strip()
    except BenchError:
        return "unknown"
    return f"{last} + uncommitted changes" if dirty else last


def revision_since(start: str) -> str:
    """The code's revision for a report, saying so if it changed while we measured."""
    now = project_revision()
    return now if now == start else f"{start}, which changed to {now} during the run"


def command_line(script: str) -> str:
    """The command that reproduces this run, relative to the repository root."""
    rel = Path(script).resolve().relative_to(REPO_ROOT)
    return shlex.join(["python3", str(rel), *sys.argv[1:]])


# -- reporting ----------------------------------------------------------------


def md_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    def cell(v: object) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |"]
    lines.append("|" + "|".join("---" for _ in headers) + "|")
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    cells = [[str(v) for v in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*headers), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*row) for row in cells]
    return "\n".join(line.rstrip() for line in out)


def timing_rows(timings: Iterable[Timing]) -> list[list[str]]:
    return [
        [t.name, fmt_seconds(t.median), fmt_seconds(t.min), fmt_seconds(t.max), str(t.runs), t.note]
        for t in timings
    ]


TIMING_HEADERS = ("measurement", "median", "min", "max", "runs", "notes")


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def write_section(name: str, body: str, readme: Path = README) -> None:
    """Replace this benchmark's section of the README (between its markers), or append it.

    Everything outside the markers is left byte for byte as it was. The file is
    replaced atomically, so an interrupted run never leaves half a README.
    """
    start, end = markers(name)
    block = f"{start}\n{body.strip()}\n{end}"
    try:
        text = readme.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = "# Benchmarks\n"
    i, j = text.find(start), text.find(end)
    if i >= 0 and j > i:
        text = text[:i] + block + text[j + len(end) :]
    elif i >= 0 or j >= 0:
        raise BenchError(f"{readme}: unbalanced markers for {name!r}; fix it by hand")
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{readme.name}.", dir=readme.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, readme)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def target_row(what: str, ratio: float, target: str, met: bool) -> list[str]:
    """A ratio row; one whose target is "—" is context ("info"), never "met"."""
    result = "info" if target.startswith("—") else ("met" if met else "NOT met")
    return [what, fmt_ratio(ratio), target, result]


TARGET_HEADERS = ("ratio", "measured", "target", "result")


# -- profiles -----------------------------------------------------------------


def profile_where(filename: str, line: int, func: str) -> str:
    """A cProfile entry as a module path (`mlops/overlay.py:170(set_images)`) or a built-in."""
    if filename == "~":
        return func  # a built-in, like <method 'read' of '_io.BufferedReader' objects>
    candidates = [*sys.path, str(REPO_ROOT)]  # editable installs are not on sys.path
    roots = [p for p in candidates if p and filename.startswith(p.rstrip("/") + "/")]
    path = filename[len(max(roots, key=len).rstrip("/")) + 1 :] if roots else filename
    return f"{path}:{line}({func})"


def profile_table(stats: object, key: str, top: int) -> str:
    """The `top` entries of a pstats.Stats sorted by `key`, as a text table with % of the run."""
    st = stats  # a pstats.Stats; typed loosely, its tables are undocumented attributes
    cumulative = [v[3] for v in st.stats.values()]  # type: ignore[attr-defined]
    total = max(st.total_tt, *cumulative, 1e-9)  # type: ignore[attr-defined]
    st.sort_stats(key)  # type: ignore[attr-defined]
    rows = []
    for fn in st.fcn_list[:top]:  # type: ignore[attr-defined]
        _cc, ncalls, own, cum, _callers = st.stats[fn]  # type: ignore[attr-defined]
        rows.append([str(ncalls), f"{own * 1e3:.1f}", f"{cum * 1e3:.1f}",
                     f"{100 * cum / total:.0f}%", profile_where(*fn)])
    return text_table(["calls", "own ms", "cum ms", "cum %", "function"], rows)


def at_least(low: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least `low`."""
    import argparse

    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}")
        return value

    return parse
