#!/usr/bin/env bash
# Every performance figure of the README, each beside its reference measured in the same run:
#   fan-out       fixcurve CURVE PUB -> SUB vs libzmq (shared/bench/libzmq_pubsub_bench.c)
#   decode        fixcurve FIX decoder vs QuickFIX C++ (shared/bench/quickfix_decode_bench.cpp)
#   end to end    FIX -> bridge -> CURVE subscribers vs the stunnel + QuickFIX + pyzmq glue
#   handshakes    fixcurve pub vs libzmq PUB + ZAP, both driven by stock libzmq clients,
#                 and RSS per idle subscriber / after 1,000 subscribers leave
# Needs what the test command installs (libzmq3-dev, libquickfix-dev, stunnel, the .venv):
# run ./scripts/test.sh once first. The reference sources are read from the shared bench
# folder beside the checkout (FIXCURVE_BENCH_REFS to point elsewhere).
# Usage: scripts/bench.sh [fanout|decode|e2e|handshake ...]   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
REFS=${FIXCURVE_BENCH_REFS:-$ROOT/../shared/bench}
OUT=$ROOT/target/refs
mkdir -p "$OUT"
export CARGO_TERM_COLOR=never
what=("$@")
[ ${#what[@]} -gt 0 ] || what=(fanout decode e2e handshake)

[ -f "$REFS/libzmq_pubsub_bench.c" ] || { echo "no reference sources in $REFS (set FIXCURVE_BENCH_REFS)" >&2; exit 1; }
gcc -O2 -o "$OUT/libzmq_pubsub_bench" "$REFS/libzmq_pubsub_bench.c" -lzmq
g++ -std=gnu++14 -O2 -Wno-deprecated -o "$OUT/quickfix_decode_bench" "$REFS/quickfix_decode_bench.cpp" -lquickfix -lpthread
echo "== build (release, bench profile)"
cargo bench --no-run --quiet 2>&1 | grep -v "^\s*Executable" || true

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }'; }
field() { sed -n "s/.*$1 \([0-9.]*\) msg\/s.*/\1/p" | head -1; }

for w in "${what[@]}"; do
case $w in
fanout)
  echo "== fan-out, CURVE 100 B, lossless, tcp loopback (msg/s; fixcurve / libzmq in the same run)"
  for subs in 1 4; do
    ref=$("$OUT/libzmq_pubsub_bench" thr curve 100 1000000 "$subs")
    ours=$(cargo bench --quiet --bench pubsub_throughput -- 100 1000000 "$subs" 2>/dev/null | grep "fixcurve thr")
    r_min=$(echo "$ref" | field "per-sub min"); r_agg=$(echo "$ref" | field "aggregate")
    o_min=$(echo "$ours" | field "per-sub min"); o_agg=$(echo "$ours" | field "aggregate")
    printf '  %d sub(s): per subscriber %s vs %s (%s), aggregate %s vs %s (%s)\n' "$subs" \
      "$o_min" "$r_min" "$(ratio "$o_min" "$r_min")" "$o_agg" "$r_agg" "$(ratio "$o_agg" "$r_agg")"
  done
  ;;
decode)
  echo "== FIX decode (ns per message; QuickFIX C++ with its FIX 4.4 dictionary, fixcurve decode + group walk)"
  dict=$ROOT/.venv/share/quickfix/FIX44.xml
  crit=$(cargo bench --quiet --bench fix_decode -- --noplot 2>/dev/null)
  for f in "$REFS"/fix-samples/*.fix; do
    name=$(basename "$f" .fix); bytes=$(stat -c %s "$f")
    qf=$("$OUT/quickfix_decode_bench" "$f" "$dict" | sed -n 's/.*with DataDictionary.* \([0-9.]*\) ns\/msg.*/\1/p')
    # criterion prints "time:   [low mid high]" after the benchmark's name.
    ns() { echo "$crit" | grep -A1 "fix_decode/$name/$1" | sed -n 's/.*time: *\[[^ ]* [^ ]* \([0-9.]*\) \([nµ]s\).*/\1 \2/p' | head -1 |
           awk '{ v = $1; if ($2 == "µs") v *= 1000; print v }'; }
    one=$(ns one_per_read); grp=$(ns with_groups)
    gbs=$(awk -v b="$bytes" -v t="$one" 'BEGIN { printf "%.2f", b / t }')
    printf '  %s (%d B): fixcurve %s ns (%s GB/s), with groups %s ns | QuickFIX %s ns | %s faster\n' \
      "$name" "$bytes" "$one" "$gbs" "$grp" "$qf" "$(ratio "$qf" "$grp")"
  done
  ;;
e2e)
  echo "== end to end: FIX over mTLS -> subscribers, fixcurve then the glue, same simulator and subscribers"
  BRIDGE_BENCH_GLUE=1 cargo bench --quiet --bench bridge_e2e 2>/dev/null | grep -v "^$"
  ;;
handshake)
  echo "== CURVE handshakes and memory per subscriber (stock libzmq clients; fixcurve pub vs libzmq PUB + ZAP)"
  cargo bench --quiet --bench curve_handshake 2>/dev/null | grep -E "^(handshake|memory)"
  ;;
*) echo "unknown part: $w (fanout, decode, e2e, handshake)" >&2; exit 2 ;;
esac
done
