#!/usr/bin/env bash
# Installs the test-only tools that come from npm into .test-tools/ (ignored by git), idempotently:
# nothing is downloaded when they are already there. Never needed by pacsindex at run time.
#   - the published OHIF Viewer build (npm package @ohif/app, its dist/ folder), for tests/dicomweb/test_ohif.py
set -euo pipefail
cd "$(dirname "$0")/.."
OHIF_VERSION=3.13.2
dest=".test-tools/ohif-$OHIF_VERSION"
if [ -f "$dest/dist/index.html" ]; then
  exit 0
fi
if ! command -v npm >/dev/null; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "test-tools: installing npm" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
echo "test-tools: fetching @ohif/app@$OHIF_VERSION (about 50 MB)" >&2
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# npm pack checks the registry's integrity hash; the package's own dependencies are not needed for dist/.
npm pack --silent --pack-destination "$tmp" "@ohif/app@$OHIF_VERSION" >/dev/null
tar -xzf "$tmp"/ohif-app-*.tgz -C "$tmp"
test -f "$tmp/package/dist/index.html"
mkdir -p .test-tools
rm -rf "$dest"
mv "$tmp/package" "$dest"
