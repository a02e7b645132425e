#!/bin/sh
# Cost of authentication: requests/s and latency percentiles of
# GET /auth/check with an API key versus the public GET /health, under
# `wrk -c 64 -d 20s` on loopback (and, for comparison, with a session
# cookie instead of the key). Usage:
#   bench/serve/auth_bench.sh [path/to/bertstudio] [duration] [connections]
# Needs wrk (apt-get install wrk) and curl. Prints one line per endpoint and
# the overhead of authentication.
set -eu
BIN=${1:-build/bertstudio}
DUR=${2:-20s}
CONN=${3:-64}
THREADS=${WRK_THREADS:-2}
PORT=${PORT:-18431}
DATA=$(mktemp -d)
trap 'kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; rm -rf "$DATA"' EXIT INT TERM

"$BIN" serve --quiet --port "$PORT" --data-dir "$DATA" >"$DATA/out" 2>"$DATA/err" &
PID=$!
i=0
until curl -sf "http://127.0.0.1:$PORT/health" >/dev/null; do
    i=$((i + 1)); [ $i -gt 200 ] && { echo "server did not start" >&2; cat "$DATA/err" >&2; exit 1; }
    sleep 0.05
done
ADMIN=$(grep -o 'ak_[0-9A-Za-z]*' "$DATA/out" | head -1)
H="Authorization: Bearer $ADMIN"
# The per-IP limit (default 100/min) would turn the benchmark into a 429
# benchmark: lift it. The admin key itself has no rate limits.
curl -sf -X PUT -H "$H" -H 'Content-Type: application/json' \
    -d '{"value": 100000000}' "http://127.0.0.1:$PORT/settings/per_ip_requests_per_minute" >/dev/null

run() { # name, wrk args...
    name=$1; shift
    out=$(wrk -t"$THREADS" -c"$CONN" -d"$DUR" --latency "$@")
    rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
    printf '%-28s %10s req/s   p50 %-9s p99 %-9s non-2xx %s\n' "$name" "$rps" "$p50" "$p99" "${non2xx:-0}"
    LAST_RPS=$rps
}

echo "bertstudio $("$BIN" --version | awk '{print $2}'), wrk -t$THREADS -c$CONN -d$DUR, $(nproc) cores"
run "GET /health" "http://127.0.0.1:$PORT/health"
HEALTH=$LAST_RPS
run "GET /auth/check (key)" -H "$H" "http://127.0.0.1:$PORT/auth/check"
CHECK=$LAST_RPS
COOKIE=$(curl -s -D - -o /dev/null -H 'Content-Type: application/json' -d "{\"api_key\": \"$ADMIN\"}" \
    "http://127.0.0.1:$PORT/auth/login" | tr -d '\r' | awk -F'[ ;]' 'tolower($1) == "set-cookie:" {print $2}')
run "GET /auth/check (session)" -H "Cookie: $COOKIE" "http://127.0.0.1:$PORT/auth/check"
awk -v h="$HEALTH" -v a="$CHECK" \
    'BEGIN { printf "auth overhead: %.1f%% fewer requests/s (%.1f us more server time per request)\n", 100 * (1 - a / h), 1e6 * (1 / a - 1 / h) }'
