"""The demo's insider: other content pushed by hand under a component's `ih-` tag.

    python3 hack/demo_tamper.py --repo CLONE --build build.json --component serve --out DIR

It replaces the image under the component's `ih-<input hash>` tag with another
manifest, writes a build record naming that digest (so the record agrees with
the registry), and runs `mlops promote --to dev --build` on it. With builders in
the trust root, no signed provenance vouches for that digest, so mlops must
refuse with exit 4. The real image goes back under its tag whatever happens.
Exits 0 when mlops refused with 4, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from mlops.adapters.registry import Registry
from mlops.core import provenance as prov
from mlops.inputs import ih_tag
from mlops.names import split_image


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repo", type=Path, required=True)
    p.add_argument("--build", type=Path, required=True)
    p.add_argument("--component", default="serve")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    record = json.loads(args.build.read_text())
    entry = next(b for b in record["builds"] if b["component"] == args.component)
    host, repository = split_image(entry["image"])
    client, tag = Registry(host), ih_tag(entry["input_hash"])
    real = client.get_manifest(repository, tag)
    client.put_blob(repository, prov.EMPTY_BLOB)
    body, media_type = prov.attestation_manifest([])  # a manifest with nothing in it
    try:
        client.put_manifest(repository, tag, body, media_type)
        entry["digest"] = client.manifest_digest(repository, tag)
        print(f"  pushed other content under {entry['image']}:{tag} -> {entry['digest'][:19]}...")
        forged = args.out / "tampered-build.json"
        forged.write_text(json.dumps(record, indent=2) + "\n")
        print(f"  and a build record that names it: {forged.name}")
        proc = subprocess.run([sys.executable, "-m", "mlops", "promote", "--repo",
                               str(args.repo), "--to", "dev", "--build", str(forged)],
                              capture_output=True, text=True)
    finally:
        client.put_manifest(repository, tag, *real)
        print(f"  (the real image is back under {tag})")
    sys.stderr.write(proc.stderr)
    if proc.returncode != 4:
        print(f"  expected exit 4 (no signed provenance), got {proc.returncode}")
        return 1
    print("  refused with exit 4, as it should be")
    (args.out / "tampered.json").write_text(json.dumps(
        {"component": args.component, "digest": entry["digest"], "exit": proc.returncode,
         "error": proc.stderr.strip().splitlines()[-1]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
