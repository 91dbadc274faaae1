#!/usr/bin/env bash
# Installs the programs Octavia runs (Debian/Ubuntu): ffmpeg (with Rubber Band), espeak-ng,
# Apertium with the English<->Spanish pair, and a font for burnt-in subtitles; and, for the
# tests, Chromium's headless shell (it renders report.html to check it) and Redis (the
# broker of the distributed serve).
# Uses sudo when not run as root.
set -euo pipefail
packages=(ffmpeg espeak-ng apertium apertium-eng-spa fonts-dejavu-core chromium-headless-shell
  redis-server)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
"${as_root[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends \
  "${missing[@]}"
