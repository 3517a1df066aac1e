"""A dry run answered from the last one, when nothing it depends on has moved.

`mlops build --dry-run` on an unchanged clone plans the same thing every time:
git lists the same files, the specs and the local digest cache say the same,
and every component is reused. The memo keeps that answer, as printed, under
a key made of everything the plan read:

- HEAD and git's listing of `components/` (`ls-files -s`: path, mode and blob
  id of every tracked file), with nothing there differing from HEAD
  (`diff-index` empty: no edit, deletion, addition or mode change) and no file
  there that git was told not to look at (assume-unchanged, skip-worktree: a
  plan with no parse of a `component.yaml` cached reads the work tree's file,
  which `diff-index` then does not vouch for);
- the names of the folders under `components/` that hold a `component.yaml`
  (a new, untracked component is refused by a plan, so it must be seen), and
  each `component.yaml` file's device, inode, size and modification time (a plan
  with no parse of it cached reads the work tree's file, which git may call
  unchanged when it is not: a clean filter in `.gitattributes`);
- the bytes of `mlops.yaml` and its stat (changed and changed back while a plan
  read it, it still counts as moved), and `$MLOPS_REGISTRY`;
- the command line (`--build-arg`, `--no-push`, `--json`);
- the local digest cache file (device, inode, size, modification time);
- mlops' own code: each module the plan ran, by path, size and modification
  time (and every module this run loaded is among them: another installation
  of the same version may plan otherwise).

It is kept only for the plainest plan, whose every input is in that key:
every component reused on the local cache's word (a component to build was
looked up in the registry, whose answer can change), no component named on
the command line (a plan of some still loads and checks all, and only the named
ones' inputs would be vouched for), no `--force` or `--changed-since`, no
symlink or submodule among the tracked files, no input outside `components/`,
every declared path and every `component.yaml` tracked (an untracked one is
read from the work tree, which no part of the key sees), none of the other
variables `mlops.yaml`'s loader reads (`SKIP_ENV`: they may carry credentials,
which have no place in a key), and no CI reporter waiting for the document.
Anything else plans as before. A memo that does not match, or cannot be read,
is planned over and written again.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mlops import __version__
from mlops.adapters import gitops
from mlops.cache import DIGEST_CACHE
from mlops.context import Context
from mlops.layout import COMPONENT_FILE, COMPONENTS_DIR, CONFIG_FILE, component_files
from mlops.plan import FROM_LOCAL_CACHE, REUSE

if TYPE_CHECKING:
    from mlops.buildoptions import BuildOptions
    from mlops.services.buildplan import Planned

MEMO = "mlops/plan-memo"
MAGIC = b"mlops-plan-memo 2\n"  # then three sections: the key, mlops' code, the text
# config.REGISTRY_ENV and the loader's other variables, named here so that a dry run
# answered from the memo does not import the configuration (tests/services/
# test_planmemo.py checks the names against mlops.config)
REGISTRY_ENV = "MLOPS_REGISTRY"
SKIP_ENV = ("MLOPS_PROMETHEUS_URL", "MLOPS_TRUST_ROOT", "MLFLOW_TRACKING_URI")
SYMLINK = "120000"  # links.LINK_MODE, without importing link resolution


def memo_key(parts: Iterable[str | bytes]) -> bytes:
    """The parts themselves, each length-prefixed so that no two lists of parts give the
    same bytes. Compared whole, not hashed: exact, and an answer from the memo loads no
    hash library (a fifth of its imports)."""
    out = [f"{__version__}\0".encode()]
    for part in parts:
        data = part.encode("utf-8", "surrogateescape") if isinstance(part, str) else part
        out.append(b"%d\0" % len(data))
        out.append(data)
    return b"".join(out)


def pack(key: bytes, code: list[tuple[str, str]], text: str) -> bytes:
    """The memo file: MAGIC, then each section as its length, a newline and its bytes."""
    lines = "".join(f"{path}\0{stat}\0" for path, stat in code)  # no path holds a NUL
    sections = [key, lines.encode("utf-8", "surrogateescape"),
                text.encode("utf-8", "surrogateescape")]
    return MAGIC + b"".join(b"%d\n" % len(s) + s for s in sections)


def unpack(data: bytes) -> tuple[bytes, list[tuple[str, str]], str] | None:
    """What `pack` wrote, or None for anything else (a memo that cannot be read is
    planned over)."""
    if not data.startswith(MAGIC):
        return None
    at, sections = len(MAGIC), []
    for _ in range(3):
        newline = data.find(b"\n", at)
        size = data[at:newline]
        if newline < 0 or not size.isdigit() or newline + 1 + int(size) > len(data):
            return None
        at = newline + 1 + int(size)
        sections.append(data[newline + 1:at])
    if at != len(data):
        return None
    key, lines, text = sections
    *items, end = lines.decode("utf-8", "surrogateescape").split("\0")
    if end or len(items) % 2:
        return None
    code = list(zip(items[::2], items[1::2], strict=True))
    return key, code, text.decode("utf-8", "surrogateescape")


def command_line(components: Sequence[str], build_args: Mapping[str, str], push: bool,
                 json_mode: bool) -> tuple[str, ...]:
    """What of the command line shapes a dry run's answer, as parts of the key (each
    list led by its length, so that no two command lines give the same parts)."""
    args = [f"{k}={v}" for k, v in sorted(build_args.items())]
    return (str(len(components)), *components, str(len(args)), *args, str(push),
            str(json_mode))


def may_answer(ctx: Context, opts: BuildOptions) -> bool:
    """Whether a memo may stand for this dry run at all (`plain` says the rest, once
    there is a plan)."""
    return (opts.dry_run and not opts.components and not opts.force
            and opts.changed_since is None and not ctx.out.ci
            and not any(ctx.environ.get(name) for name in SKIP_ENV))


def plain(planned: Planned) -> bool:
    """Whether every input of this plan is in the memo's key (see the module's text)."""
    inside = COMPONENTS_DIR + "/"
    for spec in planned.specs:
        if not all(p.startswith(inside) for p in spec.input_paths):
            return False
        declared = (spec.dockerfile, spec.context, *spec.depends_on)
        if not all(planned.index.get(p) is not None or planned.index.has_dir(p)
                   for p in declared):
            return False
        if planned.index.get(f"{spec.folder}/{COMPONENT_FILE}") is None:
            return False  # read from the work tree: git's listing does not name its content
    return all(p.action == REUSE and p.reason.endswith(FROM_LOCAL_CACHE)
               and not p.blocked and not p.dirty for p in planned.plan)


class Probe:
    """A dry run's inputs, read once: the key they make, and git's listing and the
    component folders, which the plan takes from here when the memo does not answer
    (so the text kept is the plan of exactly what the key names)."""

    def __init__(self, ctx: Context, command: Sequence[str]) -> None:
        self.ctx, self.command = ctx, command
        self.tree = gitops.read_tree(ctx.root, [COMPONENTS_DIR], flags=True)
        found = component_files(ctx.root)
        self.folders = [name for name, _file in found]
        self.spec_files = [_stat_text(st) for _name, st in found]
        git_dir = gitops.git_dir(ctx.root)
        self.memo_path = git_dir / MEMO
        self.cache_path = git_dir / DIGEST_CACHE
        self.key = self.read_key()

    def read_key(self) -> bytes | None:
        """The key of these inputs, with `mlops.yaml` and the local cache as they are
        now; None when no memo may stand for them (something differs from HEAD, or
        there is no commit or no `mlops.yaml`)."""
        tree, root = self.tree, self.ctx.root
        if (tree.head is None or tree.changes != "" or tree.unwatched is not False
                or _links_or_submodules(tree.listing)):
            return None
        try:
            config = (root / CONFIG_FILE).read_bytes()
        except OSError:
            return None  # the plan reports it
        return memo_key([str(root), *self.command, tree.head, tree.listing,
                         "\0".join(self.folders), "\0".join(self.spec_files), config,
                         _stat_line(root / CONFIG_FILE),
                         self.ctx.environ.get(REGISTRY_ENV, ""), _stat_line(self.cache_path)])

    def answer(self) -> str | None:
        """The text the last dry run printed for the same inputs, or None."""
        if self.key is None:
            return None
        try:
            memo = unpack(self.memo_path.read_bytes())
        except OSError:
            return None
        if memo is None or memo[0] != self.key or not _same_code(memo[1]):
            return None
        return memo[2]

    def remember(self, text: str) -> None:
        """Keep `text`, what the plan printed, for the next dry run, if `mlops.yaml` and
        the local cache read again now are what the key holds (the plan read them
        itself, and neither moved meanwhile). Not made to last: a crash costs a plan."""
        if self.key is None or self.read_key() != self.key:
            return
        from mlops.atomicfile import write_bytes_atomic

        try:
            write_bytes_atomic(self.memo_path, pack(self.key, _code_files(), text),
                               durable=False)
        except OSError:
            pass  # a read-only clone: the next dry run plans again


def _links_or_submodules(listing: str) -> bool:
    """Whether `ls-files -s -z` lists a symlink or a submodule (entries start with the
    mode). A plan reads a link's target wherever it lies, and a submodule is refused."""
    return any(listing.startswith(m + " ") or f"\0{m} " in listing
               for m in (SYMLINK, gitops.GITLINK))


def _stat_line(path: str | Path) -> str:
    try:
        return _stat_text(os.stat(path))
    except OSError:
        return "absent"


def _stat_text(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def _loaded() -> list[str]:
    """The file of every mlops module loaded now."""
    return [path for name, module in sorted(sys.modules.items())
            if (name == "mlops" or name.startswith("mlops."))
            and (path := getattr(module, "__file__", None))]


def _code_files() -> list[tuple[str, str]]:
    """Every mlops module loaded now (the plan ran them), with its size and time."""
    return [(path, _stat_line(path)) for path in _loaded()]


def _same_code(code: list[tuple[str, str]]) -> bool:
    """Whether the code that wrote the memo is this code, unchanged: each of its modules
    as it was, and each module this run loaded among them (not another installation's)."""
    paths = {path for path, _line in code}
    return (bool(code) and all(path in paths for path in _loaded())
            and all(_stat_line(path) == line for path, line in code))
