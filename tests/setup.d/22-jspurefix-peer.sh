#!/usr/bin/env bash
# Installs the jspurefix test peer (tests/peers/jspeer: a pinned jspurefix from npm and a small
# driver script) into target/peers/jspeer. Idempotent: `npm ci` runs only when the lock file
# changed; the driver script is always refreshed.
set -euo pipefail
cd "$(dirname "$0")/../.."
src=tests/peers/jspeer
out=target/peers/jspeer
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "== installing Node.js and npm"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi
mkdir -p "$out"
if [ ! -d "$out/node_modules/jspurefix" ] || ! cmp -s "$src/package-lock.json" "$out/package-lock.json"; then
  cp "$src/package.json" "$src/package-lock.json" "$out/"
  (cd "$out" && npm ci --no-audit --no-fund --loglevel=error)
  echo "installed jspurefix into $out"
fi
cp "$src/jspeer.js" "$out/jspeer.js"
