#!/usr/bin/env bash
# Test-only tools from npm, installed into test-tools/ (git-ignored): axe-core, which the browser tests inject
# into each page to check accessibility. The product never needs them at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
AXE_VERSION="${AXE_VERSION:-4.10.2}"
if [ -f test-tools/node_modules/axe-core/axe.min.js ] \
  && grep -q "\"version\": \"$AXE_VERSION\"" test-tools/node_modules/axe-core/package.json; then
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "test-tools: npm is missing (apt-get install npm); the accessibility tests need it" >&2
  exit 1
fi
mkdir -p test-tools
npm install --prefix test-tools --no-audit --no-fund --silent "axe-core@$AXE_VERSION"
