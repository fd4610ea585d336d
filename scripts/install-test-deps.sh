#!/usr/bin/env bash
# Installs what jobman's tests and example need beyond the Rust toolchain, from Debian's
# packages: a POSIX sh, Python 3 (the example's training script uses only its standard library),
# Chromium with its WebDriver (the browser test of the HTML index page, tests/cli/html.rs), and
# groff (rendering the man pages, tests/cli/scaffold.rs).
# Idempotent: installs only what is missing, and skips apt entirely when nothing is.
set -euo pipefail

need=()
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v sh >/dev/null 2>&1 || need+=(dash)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v groff >/dev/null 2>&1 || need+=(groff-base)

if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
