#!/usr/bin/env bash
# Installs, from Debian 12's packages, what building and testing patto needs
# and is not yet on this machine. Safe to run again: it installs only what is
# missing.
set -euo pipefail
PKGS=(build-essential clang meson ninja-build pkg-config python3
      libmicrohttpd-dev libjansson-dev libsqlite3-dev libsodium-dev libcurl4-openssl-dev
      libpq-dev libcriterion-dev sqlite3 curl wrk nginx-light libclang-rt-14-dev
      postgresql-15 postgresql-client-15)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
