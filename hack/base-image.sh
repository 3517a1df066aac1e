#!/usr/bin/env bash
# Build the local base image that component Dockerfiles use as BASE_IMAGE.
# There is no Docker Hub here, so the base is a debootstrapped Debian with
# python3 and venv, imported into the local engine. Idempotent: an existing
# image is kept unless --force is given.
set -euo pipefail

image="${MLOPS_BASE_IMAGE:-mlops-base/python:3.11-bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if [[ "${1:-}" != "--force" ]] && docker image inspect "$image" >/dev/null 2>&1; then
  echo "base image $image already present"
  exit 0
fi

rootfs=$(mktemp -d /tmp/mlops-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT

echo "debootstrapping bookworm into $rootfs (a few minutes)..."
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$rootfs" "$mirror" >/tmp/mlops-debootstrap.log 2>&1 \
  || { tail -20 /tmp/mlops-debootstrap.log >&2; exit 1; }

# pip inside builds reaches PyPI with the host's trust store.
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

tar -C "$rootfs" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["python3"]' \
  - "$image" >/dev/null
echo "built base image $image"
