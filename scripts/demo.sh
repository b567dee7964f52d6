#!/usr/bin/env bash
# Quick start 1: install, build, and run the default job on the bundled DeiT-Tiny and images.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
./build/vitq info models/deit-tiny
echo
./build/vitq eval models/deit-tiny --data data/imagenet-samples/val "$@"
