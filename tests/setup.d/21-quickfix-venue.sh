#!/usr/bin/env bash
# Builds the QuickFIX C++ venue used by the bridge end-to-end tests (tests/peers/qfvenue.cpp:
# a FIX 4.4 initiator over mTLS sending W/X/S/8 with proper repeating groups) into
# target/peers/qfvenue. Idempotent: rebuilt only when the source is newer than the binary.
set -euo pipefail
cd "$(dirname "$0")/../.."
src=tests/peers/qfvenue.cpp
out=target/peers/qfvenue
mkdir -p target/peers
if [ -x "$out" ] && [ "$out" -nt "$src" ]; then
  exit 0
fi
g++ -std=gnu++14 -O1 -DHAVE_SSL=1 -DHAVE_STD_UNIQUE_PTR=1 -Wno-deprecated-declarations -Wno-deprecated \
  -I/usr/include/quickfix -o "$out.tmp" "$src" -lquickfix -lssl -lcrypto -lpthread
mv "$out.tmp" "$out"
echo "built $out"
