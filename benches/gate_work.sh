#!/usr/bin/env bash
# Table B in instructions (callgrind): what our MCP tool gate and oauth-resource-server's add
# to a request, next to one serde_json `IgnoredAny` pass and the floor of a strict gate
# (simdutf8's UTF-8 check, then that pass), on table B's three bodies
# (benches/peers/src/bin/gate_work.rs). Instruction counts do not move with code placement,
# which moved table B's wall-clock times by up to 14 % between builds of unchanged source.
#
#   bash benches/gate_work.sh            # N_SMALL=200 N_LARGE=3
#
# Installs valgrind when missing and builds `gate_work` (release). Prints instructions per
# request and the ratios of table B's last columns.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
N_SMALL="${N_SMALL:-200}"
N_LARGE="${N_LARGE:-3}"

if ! command -v valgrind >/dev/null; then
    echo "gate_work: apt-get install valgrind" >&2
    (apt-get install -y -q valgrind >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null && apt-get install -y -q valgrind >/dev/null; }) >&2
fi
cargo build -q --release --manifest-path "$root/benches/peers/Cargo.toml" --bin gate_work
bin="$root/benches/peers/target/release/gate_work"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

count() { # n mode body → instructions inside measure_*
    timeout 600 valgrind --tool=callgrind --callgrind-out-file="$out/$2-$3.out" \
        --toggle-collect='*measure*' "$bin" "$1" "$2" "$3" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

echo "| body | ours: gate adds | its gate adds | IgnoredAny pass | floor: UTF-8 check + IgnoredAny | ours / its | ours / IgnoredAny | ours / floor | floor / its |"
echo "|---|---|---|---|---|---|---|---|---|"
for body in small string zeros; do
    n="$N_LARGE"
    [ "$body" = small ] && n="$N_SMALL"
    row=("$n")
    for mode in ours-door ours-gate its-door its-gate pass floor; do
        c="$(count "$n" "$mode" "$body")"
        [ -n "$c" ] || { echo "gate_work: $mode on $body failed" >&2; exit 1; }
        row+=("$c")
    done
    python3 - "$body" "${row[@]}" <<'PY'
import sys
body = sys.argv[1]
n, od, og, id_, ig, p, f = map(int, sys.argv[2:9])
ours, its, pas, flo = (og - od) / n, (ig - id_) / n, p / n, f / n
k = lambda x: f"{x / 1000:,.1f}K" if x < 1e6 else f"{x / 1e6:,.2f}M"
print(f"| {body} | {k(ours)} | {k(its)} | {k(pas)} | {k(flo)} | {ours / its:.2f} | "
      f"{ours / pas:.2f} | {ours / flo:.2f} | {flo / its:.2f} |")
PY
done
