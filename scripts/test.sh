#!/usr/bin/env bash
# The whole fixcurve test suite, runnable on a fresh machine: installs what the tests need
# (Debian packages, a Python venv with pyzmq, third-party FIX/TLS peers), then runs the Rust
# tests and the interoperability tests against software we did not write.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TERM_COLOR=never

# 1. Debian packages: libzmq (the reference CURVE peer through pyzmq), QuickFIX C++ (the
#    reference FIX engine), stunnel and openssl (TLS peers), a C++ compiler for test peers,
#    systemd (systemd-analyze checks the unit), git (keys audit finds secrets in a work tree)
#    and nats-server (the JetStream cluster the backbone tests start on loopback themselves).
need=()
for p in libzmq3-dev libquickfix-dev stunnel4 openssl g++ make pkg-config libssl-dev systemd git nats-server; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# 2. Python: pyzmq (bundles libzmq), msgpack, pytest, nats-py (a foreign JetStream client in
#    the backbone tests), and our own client package.
VENV="$ROOT/.venv"
if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating $VENV"
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r tests/python/requirements.txt
if [ -f clients/python/pyproject.toml ]; then
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e clients/python
fi
export PATH="$VENV/bin:$PATH"

# 3. Build the binary and whatever third-party peers the tests drive (tests/setup.d/*.sh
#    each build or install one peer under target/peers/; they are idempotent).
echo "== cargo build"
cargo build --bins --examples
mkdir -p target/peers
for s in tests/setup.d/*.sh; do
  [ -e "$s" ] || continue
  echo "== setup: $s"
  bash "$s"
done

# 4. Rust unit, integration and doc tests.
echo "== cargo test"
cargo test --workspace --all-targets --quiet
cargo test --workspace --doc --quiet
# The pure-Rust CURVE backend (`--no-default-features`: RustCrypto instead of libsodium)
# must produce the same bytes: its unit tests (libsodium reference vectors, handshake) and
# the libzmq wire transcripts.
cargo test -p fixcurve-proto --no-default-features --quiet --lib curve::
cargo test --no-default-features --quiet --test curve_vectors

# 5. Interoperability tests (pyzmq/libzmq, QuickFIX C++ and its Python wheel, jspurefix,
#    openssl s_client / s_server, stunnel).
echo "== pytest"
export FIXCURVE_BIN="$ROOT/target/debug/fixcurve"
set +e
python -m pytest tests/python -q -p no:cacheprovider "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then echo "no interop tests collected"; rc=0; fi
exit $rc
