#!/usr/bin/env bash
# QuickFIX's own session acceptance-test definitions (test/definitions/server/*), taken from
# Debian's source package of the same QuickFIX release the other interop tests link against
# (libquickfix-dev), with its LICENSE, into target/peers/quickfix-acceptance/. Nothing of it
# is committed here. The source index is read through a private apt configuration whose
# deb-src entry reuses the mirror and release this machine already installs from, so the
# system's apt sources are left as they are. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=target/peers/quickfix-acceptance
if [ -f "$out/LICENSE" ] && [ -d "$out/definitions/server/fix44" ]; then
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The mirror URI and release of the installed system (deb822 or one-line format).
uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | head -n 1 | awk '{print $2}')
if [ -z "$uri" ]; then
  uri=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | head -n 1 | awk '{print $2}')
fi
. /etc/os-release
[ -n "$uri" ] && [ -n "${VERSION_CODENAME:-}" ] || { echo "no apt mirror configured" >&2; exit 1; }
mkdir -p "$work/lists/partial" "$work/src"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $VERSION_CODENAME main" > "$work/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=$work/none"
          -o "Dir::State::Lists=$work/lists" -o "APT::Sandbox::User=root")
apt-get "${apt_opts[@]}" update -qq
(cd "$work/src" && apt-get "${apt_opts[@]}" source --download-only -qq quickfix >/dev/null)
orig=$(ls "$work"/src/quickfix_*.orig.tar.* | head -n 1)
mkdir -p "$work/x"
tar -xf "$orig" -C "$work/x" --wildcards '*/LICENSE' '*/test/definitions/*'
top=$(ls "$work/x")
rm -rf "$out"
mkdir -p "$out"
cp "$work/x/$top/LICENSE" "$out/LICENSE"
cp -r "$work/x/$top/test/definitions" "$out/definitions"
echo "QuickFIX acceptance definitions from Debian source package $(basename "$orig")" > "$out/SOURCE"
echo "unpacked $out"
