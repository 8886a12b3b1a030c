#!/usr/bin/env bash
# Installs the test-only tools that come from npm into .test-tools/ (ignored by git), idempotently:
# nothing is downloaded when they are already there. Never needed by pacsindex at run time.
#   - the published OHIF Viewer build (npm package @ohif/app, its dist/ folder), for tests/dicomweb/test_ohif.py
#   - axe-core, which the browser tests inject into each page to check accessibility (tests/axe.py)
set -euo pipefail
cd "$(dirname "$0")/.."
OHIF_VERSION=3.13.2
AXE_VERSION="${AXE_VERSION:-4.10.2}"
ohif=".test-tools/ohif-$OHIF_VERSION"
axe=".test-tools/node_modules/axe-core"

need_npm() {
  if ! command -v npm >/dev/null; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "test-tools: installing npm" >&2
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null
  fi
}

if [ ! -f "$ohif/dist/index.html" ]; then
  need_npm
  echo "test-tools: fetching @ohif/app@$OHIF_VERSION (about 50 MB)" >&2
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  # npm pack checks the registry's integrity hash; the package's own dependencies are not needed for dist/.
  npm pack --silent --pack-destination "$tmp" "@ohif/app@$OHIF_VERSION" >/dev/null
  tar -xzf "$tmp"/ohif-app-*.tgz -C "$tmp"
  test -f "$tmp/package/dist/index.html"
  mkdir -p .test-tools
  rm -rf "$ohif"
  mv "$tmp/package" "$ohif"
fi

if ! { [ -f "$axe/axe.min.js" ] && grep -q "\"version\": \"$AXE_VERSION\"" "$axe/package.json"; }; then
  need_npm
  mkdir -p .test-tools
  npm install --prefix .test-tools --no-audit --no-fund --silent "axe-core@$AXE_VERSION"
fi
