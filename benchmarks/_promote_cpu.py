"""Where a promotion's CPU goes: mlops' own process, the git and kubectl it runs, the registry.

On this benchmark's machine the registry shares the CPUs with everything else,
so a promotion is as much bound by CPU as by waiting. Each fresh process is
waited for without being reaped (`waitid(WNOWAIT)`), which leaves its
/proc/<pid>/stat readable: its own CPU time, and the CPU time of the children
it waited for (git, kubectl, and git's server side of the local remote). The
registry's CPU time is read from its /proc/<pid>/stat before and after. The
peer script runs in this process: its edit is this process' CPU time, its git
processes are this process' children. Figures are means over the runs (the
kernel counts in 10 ms ticks). Used by benchmarks/promote.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _promote_fixture import ENV, Alternator, Setup
from _promote_peer import Peer, VerifyingPeer, promote_argv
from common import BenchError, fmt_seconds, run

HZ = os.sysconf("SC_CLK_TCK")
PROMOTE_IMPORTS = ("import mlops.cli, mlops.commands.promote, mlops.services.registries, "
                   "mlops.adapters.registry")


@dataclass
class Cpu:
    """Mean CPU seconds of one run: the process itself, its children, the registry."""

    own: float = 0.0
    children: float = 0.0
    registry: float = 0.0

    @property
    def total(self) -> float:
        return self.own + self.children + self.registry


def _stat_seconds(pid: int) -> list[float]:
    """utime, stime, cutime, cstime of `pid`, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return [int(f) / HZ for f in fields[11:15]]


def _registry_seconds(pid: int | None) -> float:
    return sum(_stat_seconds(pid)[:2]) if pid else 0.0


def _process_cpu(argv: list[str], cwd: Path, registry_pid: int | None) -> Cpu:
    before = _registry_seconds(registry_pid)
    with open(os.devnull, "wb") as devnull, subprocess.Popen(
            argv, cwd=cwd, stdout=devnull, stderr=subprocess.PIPE) as proc:
        err = proc.stderr.read() if proc.stderr else b""
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        utime, stime, cutime, cstime = _stat_seconds(proc.pid)
        if proc.wait() != 0:
            raise BenchError(f"{' '.join(argv[:4])} exited {proc.returncode}: "
                             f"{err.decode(errors='replace').strip()[-300:]}")
    return Cpu(utime + stime, cutime + cstime, _registry_seconds(registry_pid) - before)


def _in_this_process(fn: Callable[[], object], registry_pid: int | None) -> Cpu:
    t0, r0 = os.times(), _registry_seconds(registry_pid)
    fn()
    t1 = os.times()
    return Cpu(max(t1.user + t1.system - t0.user - t0.system, 0.0),
               t1.children_user + t1.children_system - t0.children_user - t0.children_system,
               _registry_seconds(registry_pid) - r0)


def _mean(runs: list[Cpu]) -> Cpu:
    n = len(runs)
    return Cpu(sum(r.own for r in runs) / n, sum(r.children for r in runs) / n,
               sum(r.registry for r in runs) / n)


def measure_cpu(s: Setup, n: int, registry_pid: int | None) -> dict[str, Cpu]:
    """Mean CPU of `n` fresh promotions (after one untimed), of both peer scripts, of a bare
    interpreter, of a promotion's imports and of rendering its overlay, taken in turns."""
    records, peer = Alternator(s.records), Peer(s, f"cpu-{len(s.names)}")
    verifying = VerifyingPeer(s, f"cpu-{len(s.names)}-verifying")
    kinds: dict[str, Callable[[], Cpu]] = {
        "promote": lambda: _process_cpu(promote_argv(s, records), s.clone, registry_pid),
        "peer": lambda: _in_this_process(peer, registry_pid),
        "verifying": lambda: _process_cpu(verifying.argv(), s.tmp, registry_pid),
        "bare": lambda: _process_cpu([sys.executable, "-c", "pass"], s.clone, None),
        "imports": lambda: _process_cpu([sys.executable, "-c", PROMOTE_IMPORTS], s.clone, None),
        "render": lambda: _render_cpu(s),
    }
    runs: dict[str, list[Cpu]] = {k: [] for k in kinds}
    print(f"measuring CPU time: {n} runs of each in turns after one warm-up", flush=True)
    for i in range(n + 1):
        for kind, run_once in kinds.items():
            cpu = run_once()
            if i:
                runs[kind].append(cpu)
    return {k: _mean(v) for k, v in runs.items()}


def _render_cpu(s: Setup) -> Cpu:
    """`kubectl kustomize` of the overlay the last promotion pushed, on its own: the check
    that what is committed renders, which neither peer makes."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise BenchError("kubectl not found; the promotion itself needs it")
    with tempfile.TemporaryDirectory(prefix="render-", dir=s.tmp) as where:
        archive = Path(where, "environments.tar")
        run(["git", "--git-dir", str(s.remote), "archive", "-o", str(archive), "main",
             "environments"])
        with tarfile.open(archive) as tar:
            tar.extractall(where, filter="data")
        return _process_cpu([kubectl, "kustomize", str(Path(where, "environments", ENV))],
                            Path(where), None)


def cpu_rows(cpu: dict[str, Cpu]) -> list[list[str]]:
    p, peer, verifying = cpu["promote"], cpu["peer"], cpu["verifying"]
    bare, imports = cpu["bare"].own, cpu["imports"].own
    work = p.own - imports
    return [
        ["mlops promote: its own process (Python)", fmt_seconds(p.own),
         f"interpreter start-up {fmt_seconds(bare)}, imports {fmt_seconds(imports - bare)}, "
         f"the promotion's own work {fmt_seconds(work)} (hashing and HTTP for the checks, "
         "YAML, the overlay edit, the trust root)"],
        ["mlops promote: the git and kubectl it runs", fmt_seconds(p.children),
         f"with git's server side of the local remote; `kubectl kustomize` of the promoted "
         f"overlay alone takes {fmt_seconds(cpu['render'].own)}"],
        ["mlops promote: the registry answering its checks", fmt_seconds(p.registry),
         "docker-registry's CPU time over the run"],
        ["mlops promote: all of it", fmt_seconds(p.total),
         f"over {os.cpu_count()} CPUs: at least {fmt_seconds(p.total / (os.cpu_count() or 1))}"
         " of wall time"],
        ["verifying peer script: all of it", fmt_seconds(verifying.total),
         f"its own process {fmt_seconds(verifying.own)} (start-up {fmt_seconds(bare)}), git "
         f"{fmt_seconds(verifying.children)}, the registry {fmt_seconds(verifying.registry)}"],
        ["peer script: all of it", fmt_seconds(peer.total),
         f"git {fmt_seconds(peer.children)}, the edit {fmt_seconds(peer.own)}; "
         "no registry"],
        ["mlops promote less the verifying peer", fmt_seconds(p.total - verifying.total),
         f"its own process {fmt_seconds(p.own - verifying.own)}, git and kubectl "
         f"{fmt_seconds(p.children - verifying.children)}, the registry "
         f"{fmt_seconds(p.registry - verifying.registry)}"],
    ]


CPU_HEADERS = ("CPU time per promotion (mean)", "seconds", "of which")
