"""Every approval forgery of the promotion issue is refused with exit 4, and nothing moves.

In the `staged` world prod (approval: true) waits for staging's release;
alice and bob are in `.mlops/allowed_signers`, only alice is a release
manager, and history already holds alice's genuine approval of the *previous*
release (the one a replay would reuse). Keys are real, made by ssh-keygen.
"""

from __future__ import annotations

import re
import subprocess

from mlops.trailers import approval_message
from tests.bad_inputs.corpus import Case, check, nothing, params, pushed

TO_PROD = ["promote", "--to", "prod", "--from", "staging"]
NEEDS = "prod needs a release manager's signed approval of r-"


def forge(world, release: str | None = None, who: str = "alice@example.com",
          key: str | None = None, env: str = "prod", ref: str = "main") -> None:
    """Push an approval-shaped commit for `release` (default: the one waiting), signed by
    `key` or unsigned, to `ref`; the clone stays at the remote's main."""
    release = release or world.ids()["staging"]
    sign = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={world.keys[key]}"] if key else []
    world.git(*sign, "commit", "-q", "--allow-empty", *(["-S"] if key else []),
              "-m", approval_message(env, release, who))
    world.git("push", "-q", "origin", f"HEAD:refs/heads/{ref}")
    if ref != "main":
        world.git("reset", "-q", "--hard", "HEAD~1")


def _forger(**kwargs):
    return lambda world: forge(world, **kwargs)


def _old_approval_retargeted(world) -> None:
    """alice's signed approval of the previous release, edited to name the waiting one and
    moved on top of main (its parent and tree too): the signature no longer matches."""
    waiting = world.ids()["staging"]
    old_sha = world.git("log", "--format=%H", "--grep=^Mlops-Approve: ", "-1", "main")
    raw = world.git("cat-file", "commit", old_sha) + "\n"
    old_id = re.search(r"Mlops-Approve: (r-[0-9a-f]{12})", raw).group(1)
    head, tree = world.git("rev-parse", "HEAD", "HEAD^{tree}").split()
    raw = re.sub(r"^parent \w+$", f"parent {head}", raw, count=1, flags=re.M)
    raw = re.sub(r"^tree \w+$", f"tree {tree}", raw, count=1, flags=re.M)
    raw = raw.replace(old_id, waiting)
    sha = subprocess.run(["git", "hash-object", "-t", "commit", "-w", "--stdin"],
                         cwd=world.clone, input=raw, capture_output=True, text=True,
                         check=True).stdout.strip()
    world.git("reset", "-q", "--hard", sha)
    world.git("push", "-q", "origin", "HEAD:refs/heads/main")


def _then(setup, *more):
    def run(world):
        for step in (setup, *more):
            step(world)
    return run


def _signers_removed(world):
    world.push({".mlops/allowed_signers": None})


def _managers_emptied(world):
    world.edit("mlops.yaml", "release_managers: [alice@example.com]", "release_managers: []")


def _mallory_trusted(signed_by: str | None = None):
    """The attack of issue 14: one commit lists mallory's key and makes her a release
    manager (unsigned, or signed by `signed_by`), pushed like any other change."""
    def run(world):
        pub = world.keys["mallory"].with_name("mallory_ed25519.pub").read_text()
        world.commit({".mlops/allowed_signers": world.text(".mlops/allowed_signers")
                      + f"mallory@example.com {pub}"}, "add a signer")
        world.edit("mlops.yaml", "release_managers: [alice@example.com]",
                   "release_managers: [alice@example.com, mallory@example.com]", push=False)
        if signed_by:  # re-make the last two commits as one, signed
            world.git("reset", "-q", "--soft", "HEAD~2")
            world.git("-c", "gpg.format=ssh", "-c", f"user.signingkey={world.keys[signed_by]}",
                      "commit", "-q", "-S", "-m", "trust mallory")
        world.git("push", "-q", "origin", "HEAD:refs/heads/main")
        forge(world, who="mallory@example.com", key="mallory")
    return run


UNTRUSTED_CHANGE = "the trust root (allowed signers, release managers, builders) was changed by commit "


APPROVALS = [
    Case("replayed-approval-of-older-release", "staged", nothing, TO_PROD, 4,
         "(`mlops approve --env prod --release r-"),
    Case("unsigned-commit-with-the-trailers", "staged", _forger(), TO_PROD, 4,
         ": no signature"),
    Case("signed-by-unlisted-key", "staged", _forger(key="mallory"), TO_PROD, 4,
         "No principal matched"),
    Case("signed-by-listed-non-manager", "staged", _forger(who="bob@example.com", key="bob"),
         TO_PROD, 4, ": bob@example.com is not a release manager"),
    Case("approval-for-another-release", "staged",
         _forger(release="r-000000000000", key="alice"), TO_PROD, 4, "none found"),
    Case("approval-for-another-environment", "staged", _forger(env="staging", key="alice"),
         TO_PROD, 4, "none found"),
    Case("approval-on-another-branch", "staged", _forger(key="alice", ref="review"), TO_PROD,
         4, "none found"),
    Case("old-approval-edited-to-name-this-release", "staged", _old_approval_retargeted,
         TO_PROD, 4, "incorrect signature"),
    # Changes of the trust root on the branch, unsigned: each refuses every approval until
    # it is reverted or re-made signed by a release manager (tests/commands/test_trust_root.py).
    Case("allowed-signers-removed", "staged", _then(_signers_removed, _forger(key="alice")),
         TO_PROD, 4, UNTRUSTED_CHANGE),
    Case("allowed-signers-garbage", "staged",
         _then(pushed({".mlops/allowed_signers": "alice@example.com ssh-ed25519 AAAA-garbage\n"}),
               _forger(key="alice")), TO_PROD, 4, UNTRUSTED_CHANGE),
    Case("release-managers-emptied", "staged", _then(_managers_emptied, _forger(key="alice")),
         TO_PROD, 4, UNTRUSTED_CHANGE),
    Case("unsigned-commit-trusts-a-new-key", "staged", _mallory_trusted(), TO_PROD, 4,
         "which is not signed by a trusted key (no signature)"),
    Case("new-key-trusted-by-a-signer-who-is-no-manager", "staged", _mallory_trusted("bob"),
         TO_PROD, 4, "which bob@example.com signed, who is not a release manager"),
    Case("new-key-trusted-by-the-new-key-itself", "staged", _mallory_trusted("mallory"),
         TO_PROD, 4, "which is not signed by a trusted key (No principal matched"),
    Case("pinned-trust-root-missing", "staged",
         lambda world: {"MLOPS_TRUST_ROOT": str(world.base / "no-such-root.yaml")},
         TO_PROD, 1, "cannot read the trust root: No such file or directory"),
    Case("pinned-trust-root-not-a-mapping", "staged",
         lambda world: {"MLOPS_TRUST_ROOT": str(world.input("root.yaml", "- alice\n"))},
         TO_PROD, 1, "must be a mapping of allowed_signers, release_managers, builders"),
    Case("approve-with-a-file-that-is-no-key", "staged", nothing,
         ["approve", "--env", "prod", "--release", "{ids[staging]}", "--key",
          "{clone}/mlops.yaml"], 1, "git commit failed"),
    Case("approve-with-a-missing-key", "staged", nothing,
         ["approve", "--env", "prod", "--release", "{ids[staging]}", "--key",
          "{base}/nobody_ed25519"], 2, "nobody_ed25519 not found"),
]


@params(APPROVALS)
def test_forged_approval_is_refused(world, case, capsys):
    check(world, case, capsys)
