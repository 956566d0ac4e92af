#!/usr/bin/env bash
# ACME issuance benchmark: certkeeper vs Pebble, the same load generator (instant-acme),
# the same accounts count, the full flow with a real http-01 validation, one target after
# the other. Everything happens in a fresh temp dir that is removed on exit; every server
# is stopped on exit.
#
# Usage: bash bench/run-acme.sh
#
# Environment (all optional):
#   BENCH_ACCOUNTS        concurrent ACME accounts per target (default 4: with more,
#                         Pebble 2.4 deadlocks within seconds, see bench/README.md)
#   BENCH_DURATION        measured seconds per target (default 20)
#   BENCH_WARMUP          warm-up seconds per target, not counted (default 5)
#   BENCH_DATABASE_URL    certkeeper's database (default: SQLite in the temp dir)
#   BENCH_JSON_OUT        also write the results as JSON to this file
#   BENCH_KEEP_WORKDIR    1 = keep the temp dir (configs, server logs)
#   BENCH_TARGETS         which servers to run, default "certkeeper pebble"
#   BENCH_CK_EXTRA_ENV    extra settings for certkeeper, "CERTKEEPER_X=v CERTKEEPER_Y=w"
#   BENCH_NO_BUILD        1 = no `cargo build`: use the binaries already in target/release
#   BENCH_CERTKEEPER_BIN  certkeeper binary to run instead of this tree's release build
#                         (to compare two builds in the same conditions)
#   BENCH_SERVER_CPUS     CPUs for each ACME server (`taskset -c` list, e.g. 0); default unpinned
#   BENCH_CLIENT_CPUS     CPUs for the load generator and the DNS server (e.g. 1)
#
# Each target's line also gives the server's CPU time per issuance over the measured
# window (user + system, every thread, from /proc).
set -euo pipefail

ACCOUNTS="${BENCH_ACCOUNTS:-4}"
DURATION="${BENCH_DURATION:-20}"
WARMUP="${BENCH_WARMUP:-5}"
KEEP_WORKDIR="${BENCH_KEEP_WORKDIR:-0}"
TARGETS=" ${BENCH_TARGETS:-certkeeper pebble} "
STARTUP_TIMEOUT=60
SERVER_CPUS="${BENCH_SERVER_CPUS:-}"
CLIENT_CPUS="${BENCH_CLIENT_CPUS:-}"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
BENCH_NAME=run-acme
# shellcheck source=bench/lib.sh
source "$SCRIPT_DIR/lib.sh"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

for var in ACCOUNTS DURATION WARMUP; do
    [[ "${!var}" =~ ^[0-9]+$ ]] || die "BENCH_${var} must be a non-negative integer, got '${!var}'"
done
check_cpu_list BENCH_SERVER_CPUS "$SERVER_CPUS"
check_cpu_list BENCH_CLIENT_CPUS "$CLIENT_CPUS"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/certkeeper-acme-bench.XXXXXX")"
CHALL_PID="" PEBBLE_PID="" CK_PID="" BENCH_PID=""

cleanup() {
    local status=$?
    trap - EXIT
    stop_pid "$BENCH_PID" acme-bench
    stop_pid "$CK_PID" certkeeper
    stop_pid "$PEBBLE_PID" pebble
    stop_pid "$CHALL_PID" pebble-challtestsrv
    finish_workdir "$status" "$WORK" "$KEEP_WORKDIR"
    exit "$status"
}
on_exit cleanup

for tool in curl python3 timeout openssl; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
if ! command -v pebble >/dev/null || ! command -v pebble-challtestsrv >/dev/null; then
    apt_install pebble
fi

build_release -p certkeeper -p certkeeper-bench
CK_BIN="${BENCH_CERTKEEPER_BIN:-$TARGET_DIR/release/certkeeper}"
[[ -x "$CK_BIN" ]] || die "no certkeeper binary at $CK_BIN"
BENCH_BIN="$TARGET_DIR/release/acme-bench"

mapfile -t PORTS < <(free_ports 7)
DNS_PORT="${PORTS[0]}" CHALL_MGMT_PORT="${PORTS[1]}" HTTP01_PORT="${PORTS[2]}"
PEBBLE_PORT="${PORTS[3]}" PEBBLE_MGMT_PORT="${PORTS[4]}"
CK_HTTPS_PORT="${PORTS[5]}" CK_HTTP_PORT="${PORTS[6]}"

# ------------------------------------------------------------------ DNS
# Every A query is answered with 127.0.0.1 and AAAA with nothing, so each ordered name
# leads both servers to the load generator's http-01 responder.
(pinned "$CLIENT_CPUS" pebble-challtestsrv -dns01 "127.0.0.1:$DNS_PORT" -management "127.0.0.1:$CHALL_MGMT_PORT" \
    -http01 "" -https01 "" -tlsalpn01 "" -defaultIPv4 127.0.0.1 -defaultIPv6 "") \
    >"$WORK/challtestsrv.log" 2>&1 &
CHALL_PID=$!
wait_until "$STARTUP_TIMEOUT" "$CHALL_PID" pebble-challtestsrv \
    curl -s -o /dev/null "http://127.0.0.1:$CHALL_MGMT_PORT/"

# ------------------------------------------------------------------ Pebble
PB="$WORK/pebble"
mkdir -p "$PB"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=bench pebble TLS root" -keyout "$PB/root.key" -out "$PB/root.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
    -keyout "$PB/key.pem" -out "$PB/server.csr" 2>/dev/null
openssl x509 -req -in "$PB/server.csr" -CA "$PB/root.pem" -CAkey "$PB/root.key" \
    -CAcreateserial -days 2 -out "$PB/cert.pem" \
    -extfile <(printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n') \
    2>/dev/null
cat >"$PB/config.json" <<EOF
{
  "pebble": {
    "listenAddress": "127.0.0.1:$PEBBLE_PORT",
    "managementListenAddress": "127.0.0.1:$PEBBLE_MGMT_PORT",
    "certificate": "$PB/cert.pem",
    "privateKey": "$PB/key.pem",
    "httpPort": $HTTP01_PORT,
    "tlsPort": $HTTP01_PORT,
    "ocspResponderURL": "",
    "externalAccountBindingRequired": false
  }
}
EOF
# No artificial validation delay, no deliberately rejected nonces, no authorization reuse
# (every name is new anyway): Pebble at its fastest.
(export PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0
    pinned "$SERVER_CPUS" pebble -config "$PB/config.json" -dnsserver "127.0.0.1:$DNS_PORT") \
    >"$WORK/pebble.log" 2>&1 &
PEBBLE_PID=$!
wait_until "$STARTUP_TIMEOUT" "$PEBBLE_PID" pebble \
    curl -sf --cacert "$PB/root.pem" "https://127.0.0.1:$PEBBLE_PORT/dir"

# ------------------------------------------------------------------ certkeeper
CK_DATA="$WORK/ck"
mkdir -m 700 "$CK_DATA"
(
    while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^CERTKEEPER_' || true)
    export CERTKEEPER_SERVER__HTTPS_LISTEN="127.0.0.1:$CK_HTTPS_PORT"
    export CERTKEEPER_SERVER__HTTP_LISTEN="127.0.0.1:$CK_HTTP_PORT"
    [[ -z "${BENCH_DATABASE_URL:-}" ]] || export CERTKEEPER_DATABASE__URL="$BENCH_DATABASE_URL"
    export CERTKEEPER_ACME__HTTP01_PORT="$HTTP01_PORT"
    export CERTKEEPER_ACME__DNS_RESOLVERS="[\"127.0.0.1:$DNS_PORT\"]"
    # Pebble has no rate limits; certkeeper's are lifted for the comparison.
    export CERTKEEPER_ACME__NEW_ORDERS_PER_ACCOUNT_PER_HOUR=0
    export CERTKEEPER_ACME__NEW_ACCOUNTS_PER_IP_PER_HOUR=0
    # The generated default profile allows no names unless first start names some.
    export CERTKEEPER_CA__DEFAULT_PROFILE_NAMES='[".bench.test", "bench.test"]'
    # shellcheck disable=SC2086 # space-separated NAME=value pairs
    [[ -z "${BENCH_CK_EXTRA_ENV:-}" ]] || export ${BENCH_CK_EXTRA_ENV}
    pinned "$SERVER_CPUS" "$CK_BIN" serve --data-dir "$CK_DATA"
) >"$WORK/certkeeper.log" 2>&1 &
CK_PID=$!
wait_until "$STARTUP_TIMEOUT" "$CK_PID" certkeeper test -s "$CK_DATA/server-ca.pem"
wait_until "$STARTUP_TIMEOUT" "$CK_PID" certkeeper \
    curl -sf --cacert "$CK_DATA/server-ca.pem" "https://127.0.0.1:$CK_HTTPS_PORT/readyz"

# ------------------------------------------------------------------ run
json_args=()
[[ -z "${BENCH_JSON_OUT:-}" ]] || json_args=(--json-out "$BENCH_JSON_OUT")
log "pebble $(dpkg-query -W -f '${Version}' pebble 2>/dev/null || echo '?'); $(nproc) CPUs shared by client, servers and DNS"
target_args=()
[[ "$TARGETS" != *" certkeeper "* ]] || target_args+=(
    --certkeeper-directory "https://127.0.0.1:$CK_HTTPS_PORT/acme/directory"
    --certkeeper-root "$CK_DATA/server-ca.pem" --certkeeper-pid "$CK_PID")
[[ "$TARGETS" != *" pebble "* ]] || target_args+=(
    --pebble-directory "https://127.0.0.1:$PEBBLE_PORT/dir" --pebble-root "$PB/root.pem"
    --pebble-pid "$PEBBLE_PID")
(pinned "$CLIENT_CPUS" "$BENCH_BIN" "${target_args[@]}" \
    --http01-listen "127.0.0.1:$HTTP01_PORT" \
    --accounts "$ACCOUNTS" --duration-secs "$DURATION" --warmup-secs "$WARMUP" \
    "${json_args[@]}") &
BENCH_PID=$!
wait "$BENCH_PID" || die "load generator failed"
BENCH_PID=""
