#!/usr/bin/env bash
# REST issuance benchmark: certkeeper vs `cfssl serve`, same CSR, same
# concurrency, one after the other. Everything happens in a fresh temp dir
# that is removed on exit; both servers are stopped on exit.
#
# Usage: bash bench/run-rest.sh
#
# Environment (all optional):
#   BENCH_CONCURRENCY      concurrent in-flight requests per target (default 32)
#   BENCH_DURATION         measured seconds per target (default 20)
#   BENCH_WARMUP           warm-up seconds per target, not counted (default 3)
#   BENCH_JSON_OUT         also write the results as JSON to this file
#   BENCH_SKIP_CERTKEEPER  1 = benchmark cfssl alone (for checking the setup)
#   BENCH_KEEP_WORKDIR     1 = keep the temp dir (keys, configs, server logs)
#   BENCH_STARTUP_TIMEOUT  seconds to wait for each server to come up (default 60)
#   BENCH_BUILD_TIMEOUT    seconds allowed for `cargo build --release` (default 3600)
#   BENCH_NO_BUILD         1 = no `cargo build`: use the binaries already in target/release
#   BENCH_CK_EXTRA_ENV     extra settings for certkeeper, "CERTKEEPER_X=v CERTKEEPER_Y=w"
#   BENCH_CERTKEEPER_BIN   certkeeper binary to run instead of this tree's release build
#                          (to compare two builds in the same conditions)
#   BENCH_SERVER_CPUS      CPUs for each server in turn (`taskset -c` list, e.g. 0); default unpinned
#   BENCH_CLIENT_CPUS      CPUs for the load generator (e.g. 1); default unpinned
#
# Each target's line also gives the server's CPU time per certificate over the measured
# window (user + system, every thread, from /proc), so a pinned run shows the cost per
# certificate beside the rate.
set -euo pipefail

CONCURRENCY="${BENCH_CONCURRENCY:-32}"
DURATION="${BENCH_DURATION:-20}"
WARMUP="${BENCH_WARMUP:-3}"
SKIP_CERTKEEPER="${BENCH_SKIP_CERTKEEPER:-0}"
KEEP_WORKDIR="${BENCH_KEEP_WORKDIR:-0}"
STARTUP_TIMEOUT="${BENCH_STARTUP_TIMEOUT:-60}"
BUILD_TIMEOUT="${BENCH_BUILD_TIMEOUT:-3600}"
REQUEST_TIMEOUT=30
SERVER_CPUS="${BENCH_SERVER_CPUS:-}"
CLIENT_CPUS="${BENCH_CLIENT_CPUS:-}"

for var in CONCURRENCY DURATION WARMUP STARTUP_TIMEOUT BUILD_TIMEOUT; do
    if ! [[ "${!var}" =~ ^[0-9]+$ ]]; then
        echo "run-rest.sh: BENCH_${var} must be a non-negative integer, got '${!var}'" >&2
        exit 2
    fi
done

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
BENCH_NAME=run-rest
# shellcheck source=bench/lib.sh
source "$SCRIPT_DIR/lib.sh"
check_cpu_list BENCH_SERVER_CPUS "$SERVER_CPUS"
check_cpu_list BENCH_CLIENT_CPUS "$CLIENT_CPUS"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/certkeeper-bench.XXXXXX")"
CFSSL_PID=""
CK_PID=""
BENCH_PID=""

cleanup() {
    local status=$?
    trap - EXIT
    stop_pid "$BENCH_PID" certkeeper-bench
    stop_pid "$CK_PID" certkeeper
    stop_pid "$CFSSL_PID" cfssl
    finish_workdir "$status" "$WORK" "$KEEP_WORKDIR"
    exit "$status"
}
on_exit cleanup

# ---------------------------------------------------------------- tools
for tool in curl python3 timeout; do
    command -v "$tool" >/dev/null || die "$tool is required"
done

if ! command -v cfssl >/dev/null || ! command -v cfssljson >/dev/null; then
    apt_install golang-cfssl
fi

# ---------------------------------------------------------------- build
if [[ "$SKIP_CERTKEEPER" == 1 ]]; then
    packages=(-p certkeeper-bench)
else
    packages=(-p certkeeper -p certkeeper-bench)
fi
build_release "${packages[@]}"
BENCH_BIN="$TARGET_DIR/release/certkeeper-bench"
CK_BIN="${BENCH_CERTKEEPER_BIN:-$TARGET_DIR/release/certkeeper}"
[[ -x "$BENCH_BIN" ]] || die "missing $BENCH_BIN"

mapfile -t PORTS < <(free_ports 3)
CFSSL_PORT="${PORTS[0]}"
CK_HTTPS_PORT="${PORTS[1]}"
CK_HTTP_PORT="${PORTS[2]}"

# ---------------------------------------------------------------- cfssl
CFSSL_DIR="$WORK/cfssl"
mkdir -p "$CFSSL_DIR"
cat >"$CFSSL_DIR/csr.json" <<'EOF'
{
  "CN": "certkeeper-bench cfssl CA",
  "key": { "algo": "ecdsa", "size": 256 },
  "names": [{ "O": "certkeeper-bench" }]
}
EOF
cat >"$CFSSL_DIR/config.json" <<'EOF'
{
  "signing": {
    "default": {
      "expiry": "2160h",
      "usages": ["signing", "key encipherment", "server auth"]
    }
  }
}
EOF
log "creating cfssl CA (ECDSA P-256)"
(cd "$CFSSL_DIR" && timeout 60 cfssl genkey -initca csr.json 2>"$WORK/cfssl-genkey.log" |
    timeout 60 cfssljson -bare ca) || die "cfssl CA creation failed"
[[ -s "$CFSSL_DIR/ca.pem" && -s "$CFSSL_DIR/ca-key.pem" ]] || die "cfssl CA files missing"

log "starting cfssl serve on 127.0.0.1:$CFSSL_PORT"
(cd "$CFSSL_DIR" && pinned "$SERVER_CPUS" cfssl serve -address 127.0.0.1 -port "$CFSSL_PORT" \
    -ca ca.pem -ca-key ca-key.pem -config config.json) >"$WORK/cfssl.log" 2>&1 &
CFSSL_PID=$!
CFSSL_URL="http://127.0.0.1:$CFSSL_PORT"
# Any HTTP answer means the listener is up.
wait_until "$STARTUP_TIMEOUT" "$CFSSL_PID" cfssl \
    curl -s -o /dev/null --max-time 2 "$CFSSL_URL/api/v1/cfssl/scaninfo"

# ---------------------------------------------------------------- certkeeper
ck_args=()
if [[ "$SKIP_CERTKEEPER" != 1 ]]; then
    [[ -x "$CK_BIN" ]] || die "missing $CK_BIN"
    CK_DATA="$WORK/ck"
    mkdir -m 700 "$CK_DATA"
    CK_URL="https://127.0.0.1:$CK_HTTPS_PORT"
    log "starting certkeeper serve on $CK_URL"
    (
        # Start from the server's defaults: drop any inherited CERTKEEPER_* settings.
        while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^CERTKEEPER_' || true)
        export CERTKEEPER_SERVER__HTTPS_LISTEN="127.0.0.1:$CK_HTTPS_PORT"
        export CERTKEEPER_SERVER__HTTP_LISTEN="127.0.0.1:$CK_HTTP_PORT"
        # The generated default profile allows no names unless first start names some.
        export CERTKEEPER_CA__DEFAULT_PROFILE_NAMES='["bench.example.com"]'
        # shellcheck disable=SC2086 # space-separated NAME=value pairs
        [[ -z "${BENCH_CK_EXTRA_ENV:-}" ]] || export ${BENCH_CK_EXTRA_ENV}
        pinned "$SERVER_CPUS" "$CK_BIN" serve --data-dir "$CK_DATA"
    ) >"$WORK/certkeeper.log" 2>&1 &
    CK_PID=$!
    wait_until "$STARTUP_TIMEOUT" "$CK_PID" certkeeper \
        test -s "$CK_DATA/admin.token" -a -s "$CK_DATA/server-ca.pem"
    wait_until "$STARTUP_TIMEOUT" "$CK_PID" certkeeper \
        curl -sf --max-time 2 --cacert "$CK_DATA/server-ca.pem" "$CK_URL/healthz"
    ck_args=(
        --certkeeper-url "$CK_URL"
        --certkeeper-token-file "$CK_DATA/admin.token"
        --certkeeper-ca-file "$CK_DATA/server-ca.pem"
        --certkeeper-pid "$CK_PID"
    )
fi

# ---------------------------------------------------------------- run
json_args=(--json-out "$WORK/result.json")
if [[ -n "${BENCH_JSON_OUT:-}" ]]; then
    json_args=(--json-out "$BENCH_JSON_OUT")
fi
# Per target: preflight + warm-up + window + in-flight requests draining.
RUN_TIMEOUT=$((2 * (WARMUP + DURATION + 2 * REQUEST_TIMEOUT) + 60))
log "cfssl: $(cfssl version 2>/dev/null | head -n 1 || echo unknown version); $(nproc) CPUs shared by client and server"
log "running load generator: concurrency $CONCURRENCY, ${DURATION}s (+${WARMUP}s warm-up) per target; server CPUs ${SERVER_CPUS:-all}, load generator CPUs ${CLIENT_CPUS:-all}"
# Run in the background and `wait`, so a signal to this script is handled at
# once (the EXIT trap then stops the load generator and both servers).
(pinned "$CLIENT_CPUS" timeout "$RUN_TIMEOUT" "$BENCH_BIN" \
    "${ck_args[@]}" \
    --cfssl-url "$CFSSL_URL" \
    --cfssl-pid "$CFSSL_PID" \
    --concurrency "$CONCURRENCY" \
    --duration-secs "$DURATION" \
    --warmup-secs "$WARMUP" \
    --request-timeout-secs "$REQUEST_TIMEOUT" \
    "${json_args[@]}") &
BENCH_PID=$!
wait "$BENCH_PID" || die "load generator failed"
BENCH_PID=""
