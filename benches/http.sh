#!/usr/bin/env bash
# Load test over real HTTP on 127.0.0.1: the same `POST /mcp` route answering 200 "ok" with no
# layer, with ours, and with each peer (benches/peers/src/bin/serve.rs), under wrk; and `raw`,
# the floor of any layer: no layer, the handler checks the token's signature alone.
#
#   bash benches/http.sh                 # ROUNDS=3 DURATION=10 WARMUP=2 PORT_BASE=28400
#
# Installs Debian's wrk when it is missing and builds `serve` (release). Then, ROUNDS times,
# for every mode in an order rotated from round to round: starts `serve <mode> <port>` pinned
# to CPU 0, reads its `TOKEN` line, warms up for WARMUP s, and runs
# `wrk -t1 -c8 -dDURATION s` pinned to CPU 1 with the bearer token; the server's CPU time
# (utime + stime from /proc/PID/stat) before and after the measured run gives its CPU per
# request. Every server is stopped by its PID (and any left at exit). A non-2xx answer or a
# socket error fails the run: a layer that refuses the token is a setup bug, not a result.
#
# Prints a markdown table: median req/s per mode, the median per-round ratio to `none`, the
# median server CPU µs per request, ours against the best peer of each round, and the floor
# (`raw`) against both: what a layer costing nothing beyond the signature would reach.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
PORT_BASE="${PORT_BASE:-28400}"
MODES=(none raw ours tower-oauth2 oauth-resource-server jwt-authorizer)

if ! command -v wrk >/dev/null; then
    echo "http: apt-get install wrk" >&2
    (apt-get install -y -q wrk >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }) >&2
fi

echo "http: cargo build --release --bin serve (benches/peers)" >&2
(cd "$root" && nice -n 10 cargo build --quiet --release \
    --manifest-path benches/peers/Cargo.toml --bin serve)
serve="${CARGO_TARGET_DIR:-$here/peers/target}/release/serve"

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

clk_tck="$(getconf CLK_TCK)"

# utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat; the
# command name in field 2 may hold spaces, so count from the `)` that ends it).
cpu_ticks() {
    sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# Stops a server by PID: TERM, at most 5 s, then KILL.
stop() {
    local pid="$1"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# One measured run: prints `round mode req/s cpu_us_per_request` to the results file.
run_one() {
    local round="$1" mode="$2" port="$3"
    local out="$work/$mode.$port.out" err="$work/$mode.$port.err" lua="$work/$mode.$port.lua"
    taskset -c 0 "$serve" "$mode" "$port" >"$out" 2>"$err" &
    local pid=$!
    pids+=("$pid")
    local token=""
    for _ in $(seq 200); do # 20 s: start-up plus at most 10 s for a peer's first key fetch
        token="$(sed -n 's/^TOKEN //p' "$out" | head -n 1)"
        [ -n "$token" ] && break
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "http: serve $mode $port exited:" >&2
            cat "$err" >&2
            exit 1
        fi
        sleep 0.1
    done
    if [ -z "$token" ]; then
        echo "http: serve $mode $port printed no token within 20 s" >&2
        exit 1
    fi
    printf 'wrk.method = "POST"\nwrk.headers["Authorization"] = "Bearer %s"\n' "$token" >"$lua"
    local url="http://127.0.0.1:$port/mcp"
    timeout $((WARMUP + 20)) taskset -c 1 wrk -t1 -c8 -d"${WARMUP}s" -s "$lua" "$url" >/dev/null
    local before after report
    before="$(cpu_ticks "$pid")"
    report="$(timeout $((DURATION + 20)) taskset -c 1 wrk -t1 -c8 -d"${DURATION}s" -s "$lua" "$url")"
    after="$(cpu_ticks "$pid")"
    stop "$pid"
    if grep -qE 'Non-2xx|Socket errors' <<<"$report"; then
        echo "http: $mode: refused or failed requests:" >&2
        echo "$report" >&2
        exit 1
    fi
    local rps requests cpu_us
    rps="$(awk '/^Requests\/sec:/ { print $2 }' <<<"$report")"
    requests="$(awk '/requests in/ { print $1 }' <<<"$report")"
    cpu_us="$(awk -v t=$((after - before)) -v hz="$clk_tck" -v n="$requests" \
        'BEGIN { printf "%.2f", t / hz * 1e6 / n }')"
    echo "http: round $round $mode: $rps req/s, server CPU $cpu_us µs/request" >&2
    echo "$round $mode $rps $cpu_us" >>"$work/results"
}

port="$PORT_BASE"
for round in $(seq "$ROUNDS"); do
    for k in "${!MODES[@]}"; do
        mode="${MODES[$(((round - 1 + k) % ${#MODES[@]}))]}"
        run_one "$round" "$mode" "$port"
        port=$((port + 1))
    done
done

# The table: medians over rounds (per-round ratios, so a slow spell of this shared machine
# hits every mode of that round alike). mawk has no sort: insertion sort.
awk -v modes="${MODES[*]}" -v rounds="$ROUNDS" -v duration="$DURATION" '
function median(a, n,    i, j, x) {
    for (i = 2; i <= n; i++) {
        x = a[i]
        for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]
        a[j + 1] = x
    }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{ rps[$2, $1] = $3; cpu[$2, $1] = $4 }
END {
    m = split(modes, mode, " ")
    printf "wrk -t1 -c8 -d%ss, server on CPU 0, wrk on CPU 1, %d rounds; medians over rounds.\n\n", duration, rounds
    print "| mode | req/s | req/s / none | server CPU µs/request | CPU / none |"
    print "|---|---|---|---|---|"
    for (i = 1; i <= m; i++) {
        for (r = 1; r <= rounds; r++) {
            a[r] = rps[mode[i], r]; b[r] = rps[mode[i], r] / rps["none", r]
            c[r] = cpu[mode[i], r]; d[r] = cpu[mode[i], r] / cpu["none", r]
        }
        printf "| %s | %.0f | %.2f | %.1f | %.2f |\n", mode[i], median(a, rounds), median(b, rounds), median(c, rounds), median(d, rounds)
    }
    for (r = 1; r <= rounds; r++) {
        best = 0; least = 0
        for (i = 1; i <= m; i++) {
            if (mode[i] == "none" || mode[i] == "ours" || mode[i] == "raw") continue
            if (rps[mode[i], r] > best) best = rps[mode[i], r]
            if (least == 0 || cpu[mode[i], r] < least) least = cpu[mode[i], r]
        }
        e[r] = rps["ours", r] / best; f[r] = cpu["ours", r] / least
        g[r] = rps["raw", r] / best; h[r] = rps["ours", r] / rps["raw", r]
        k[r] = cpu["ours", r] - cpu["raw", r]
    }
    printf "\nours / best peer of each round: req/s %.2f, server CPU per request %.2f\n", median(e, rounds), median(f, rounds)
    printf "floor (raw) / best peer: req/s %.2f; ours / floor: req/s %.2f, server CPU beyond the floor %.1f µs/request\n", median(g, rounds), median(h, rounds), median(k, rounds)
}' "$work/results"
