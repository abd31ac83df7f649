#!/usr/bin/env bash
# Installs what building, testing and demonstrating db_virtuoso needs on Debian 12.
# Idempotent: does nothing when everything is there already.
set -euo pipefail

PACKAGES=(
    postgresql-15 postgresql-server-dev-15 postgresql-contrib postgresql-15-hypopg
    libfmt-dev nlohmann-json3-dev libipc-run-perl googletest libgtest-dev cmake g++ make
    sqitch libdbd-pg-perl
    # the report's browser test and the demo's screenshot: headless Chromium and a font
    chromium fonts-dejavu-core
)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]}; run this script as root to install them" >&2
    exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
