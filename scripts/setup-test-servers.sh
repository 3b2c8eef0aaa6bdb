#!/usr/bin/env bash
# Installs every server the integration tests need and caches the slow ones
# under ~/.cache/registry-cleaner, keyed by version. Idempotent.
# Prints the environment the tests read (RC_* variables) as `export` lines.
set -euo pipefail
here=$(dirname "$(realpath "$0")")
cache="${XDG_CACHE_HOME:-$HOME/.cache}/registry-cleaner"
mkdir -p "$cache"
export DEBIAN_FRONTEND=noninteractive

need_apt=()
command -v docker-registry >/dev/null || need_apt+=(docker-registry)
command -v skopeo >/dev/null || need_apt+=(skopeo)
command -v htpasswd >/dev/null || need_apt+=(apache2-utils)
command -v etcd >/dev/null || need_apt+=(etcd-server)
command -v tmux >/dev/null || need_apt+=(tmux)
command -v wrk >/dev/null || need_apt+=(wrk)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v curl >/dev/null || need_apt+=(curl)
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
if [ ${#need_apt[@]} -gt 0 ]; then
  $SUDO apt-get update -qq >&2
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >&2
fi

# MongoDB-protocol server: SecantusDB's static secantusd-rs from PyPI.
SECANTUS_VERSION=0.6.0b17
venv="$cache/secantus-$SECANTUS_VERSION"
if [ ! -x "$venv/bin/secantusd-rs" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q "SecantusDB==$SECANTUS_VERSION" >&2 || {
    # fallback: the pure-Python server
    "$venv/bin/pip" install -q "SecantusDB==0.7.0b3" >&2
  }
fi
mongo_bin="$venv/bin/secantusd-rs"
[ -x "$mongo_bin" ] || mongo_bin="$venv/bin/secantusd-py"

# S3 API server for the registry's S3 storage driver (tests/storage.rs, tests/support/s3.rs): moto from PyPI.
MOTO_VERSION=5.2.5
moto_venv="$cache/moto-$MOTO_VERSION"
if [ ! -x "$moto_venv/bin/moto_server" ]; then
  python3 -m venv "$moto_venv" >&2
  "$moto_venv/bin/pip" install -q "moto[server]==$MOTO_VERSION" >&2
fi

# kube-apiserver v1.20.2 built from Debian's source package (~5 min once).
KUBE_VERSION=1.20.2-debian-bookworm
kdir="$cache/kube-apiserver-$KUBE_VERSION"
if [ ! -x "$kdir/kube-apiserver" ]; then
  "$here/test-servers/kube-apiserver-from-debian-source.sh" "$kdir" >&2
fi

echo "export RC_MONGO_BIN='$mongo_bin'"
echo "export RC_KUBE_APISERVER='$kdir/kube-apiserver'"
echo "export RC_ETCD_BIN='$(command -v etcd)'"
echo "export RC_REGISTRY_BIN='$(command -v docker-registry)'"
echo "export RC_MOTO_SERVER='$moto_venv/bin/moto_server'"
