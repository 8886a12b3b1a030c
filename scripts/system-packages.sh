#!/usr/bin/env bash
# Installs the Debian packages the tests need (real Samba, Chromium, unzip, DejaVu for the PDF report ...), idempotently:
# nothing is downloaded when they are already there. Needs root (or sudo) and apt-get.
set -euo pipefail
PACKAGES=(sqlite3 unzip samba smbclient chromium firebird3.0-server orthanc orthanc-dicomweb orthanc-gdcm fonts-dejavu-core dcmtk dicom3tools)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "system-packages: apt-get not found; install these yourself: ${missing[*]}" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "system-packages: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
