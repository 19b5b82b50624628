#!/usr/bin/env bash
# Install the Debian packages listed in requirements-apt.txt that are missing.
# Part of `make setup`; needs root (CI and the dev machines run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
for pkg in $(grep -v '^\s*#' requirements-apt.txt | awk '{print $1}'); do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
