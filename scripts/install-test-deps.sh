#!/usr/bin/env bash
# Installs what jobman's tests and example need beyond the Rust toolchain, from Debian's
# packages: a POSIX sh and Python 3 (the example's training script uses only its standard library).
set -euo pipefail

need=()
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v sh >/dev/null 2>&1 || need+=(dash)

if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
