#!/usr/bin/env bash
# Builds the QuickFIX C++ test peer (tests/peers/qfpeer.cpp) against Debian's libquickfix-dev,
# with its SSL transports (the Debian headers use dynamic exception specifications, hence C++14), into target/peers/qfpeer. Idempotent: rebuilt only when the source
# is newer than the binary.
set -euo pipefail
cd "$(dirname "$0")/../.."
src=tests/peers/qfpeer.cpp
out=target/peers/qfpeer
mkdir -p target/peers
if [ -x "$out" ] && [ "$out" -nt "$src" ]; then
  exit 0
fi
g++ -std=gnu++14 -O1 -DHAVE_SSL=1 -DHAVE_STD_UNIQUE_PTR=1 -Wno-deprecated-declarations \
  -I/usr/include/quickfix -o "$out.tmp" "$src" -lquickfix -lssl -lcrypto -lpthread
mv "$out.tmp" "$out"
echo "built $out"
