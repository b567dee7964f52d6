#!/usr/bin/env bash
# Installs what vitq needs to build and test (Debian 12 packages), only where missing.
# Safe to run any number of times; needs root (or password-less sudo) only when something is missing.
set -euo pipefail
PKGS=(g++ make cmake pkg-config git ca-certificates
      libdnnl-dev libopenblas-openmp-dev nlohmann-json3-dev libcli11-dev
      libjpeg62-turbo-dev libpng-dev libgtest-dev libbenchmark-dev libxxhash-dev time
      python3-dev pybind11-dev python3-numpy python3-pytest python3-pil
      libonnx-dev libprotobuf-dev libopenmpi-dev openmpi-bin)
missing=()
for p in "${PKGS[@]}"; do
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" = installed ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null && sudo -n true 2>/dev/null || {
    echo "vitq setup: missing packages: ${missing[*]}; run as root: apt-get install -y ${missing[*]}" >&2; exit 1; }
  SUDO=(sudo -n)
fi
echo "vitq setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq >&2
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
