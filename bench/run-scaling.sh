#!/usr/bin/env bash
# Scaling benchmark: how issuance grows with the server's cores. For each core count N in
# turn, REST issuance (certkeeper, then cfssl: bench/run-rest.sh) and ACME issuance
# (certkeeper: bench/run-acme.sh) with every server pinned to CPUs 0..N-1 and the load
# generator on CPUs of its own; then one table per workload, with each rate's speedup over
# the one-core rate. Meant for a machine with 16 or more CPUs (on this project's 2-core
# machine only N = 1 fits beside a load-generator core).
#
# Usage: bash bench/run-scaling.sh
#
# Environment (all optional):
#   BENCH_SCALING_CORES     server core counts, in order (default "1 2 4 8")
#   BENCH_CLIENT_CPUS       the load generator's CPUs (default: the upper half of the
#                           machine, e.g. 8-15 on 16 CPUs); must not overlap 0..N-1
#   BENCH_CONCURRENCY       REST clients (default 64)
#   BENCH_ACCOUNTS          ACME accounts (default 64)
#   BENCH_DURATION          measured seconds per target and core count (default 10)
#   BENCH_SCALING_WORKLOADS which workloads (default "rest acme")
#   BENCH_SCALING_BATCH_OFF 1 = for N > 1 also run certkeeper's REST with
#                           `server.batch_scheduling = false` (default 1)
#   BENCH_SCALING_OUT       directory for the JSON reports and tables (default: a new
#                           temporary directory, kept and printed at the end)
#   BENCH_NO_BUILD          1 = use the binaries already in target/release (no cargo);
#                           cfssl, cfssljson, pebble and pebble-challtestsrv are then
#                           looked up on PATH
#
# Before measuring, the script checks that `taskset` really confines a process (two busy
# processes pinned to one CPU must together get about one CPU's time): under a sandbox
# that accepts the affinity call without enforcing it, the tables would be meaningless,
# so the script stops there.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
BENCH_NAME=run-scaling
# shellcheck source=bench/lib.sh
source "$SCRIPT_DIR/lib.sh"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

CPUS="$(nproc --all)"
CORES="${BENCH_SCALING_CORES:-1 2 4 8}"
CLIENT_CPUS="${BENCH_CLIENT_CPUS:-$((CPUS / 2))-$((CPUS - 1))}"
WORKLOADS=" ${BENCH_SCALING_WORKLOADS:-rest acme} "
BATCH_OFF="${BENCH_SCALING_BATCH_OFF:-1}"
export BENCH_CONCURRENCY="${BENCH_CONCURRENCY:-64}"
export BENCH_ACCOUNTS="${BENCH_ACCOUNTS:-64}"
export BENCH_DURATION="${BENCH_DURATION:-10}"
export BENCH_CLIENT_CPUS="$CLIENT_CPUS"
check_cpu_list BENCH_CLIENT_CPUS "$CLIENT_CPUS"
for n in $CORES; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "BENCH_SCALING_CORES must list core counts, got '$n'"
done
command -v python3 >/dev/null || die "python3 is required"

# cpu_set LIST: the CPUs of a `taskset -c` list, one per line.
cpu_set() {
    python3 - "$1" <<'PY'
import sys
for part in sys.argv[1].split(","):
    lo, _, hi = part.partition("-")
    for cpu in range(int(lo), int(hi or lo) + 1):
        print(cpu)
PY
}
mapfile -t client_set < <(cpu_set "$CLIENT_CPUS")
for n in $CORES; do
    for cpu in "${client_set[@]}"; do
        ((cpu >= n)) || die "server CPUs 0-$((n - 1)) overlap the load generator's ($CLIENT_CPUS)"
        ((cpu < CPUS)) || die "the load generator's CPU $cpu is not on this machine ($CPUS CPUs)"
    done
    ((n + ${#client_set[@]} <= CPUS)) || die "$n server CPUs and ${#client_set[@]} for the load generator exceed $CPUS"
done

# Pinning must confine: two busy loops on one CPU for 2 s get about 2 s of CPU together
# where affinity is enforced, about 4 s where it is not.
log "checking that taskset confines processes"
pinned_cpu_ms="$(taskset -c 0 python3 - <<'PY'
import os, resource, time
end = time.monotonic() + 2.0
kids = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        while time.monotonic() < end:
            pass
        os._exit(0)
    kids.append(pid)
for pid in kids:
    os.waitpid(pid, 0)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(int((r.ru_utime + r.ru_stime) * 1000))
PY
)"
log "two busy processes pinned to CPU 0 for 2 s used ${pinned_cpu_ms} ms of CPU"
((pinned_cpu_ms < 3000)) ||
    die "taskset does not confine processes here (${pinned_cpu_ms} ms of CPU in 2 s on one CPU): a scaling table would be meaningless"

OUT="${BENCH_SCALING_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/certkeeper-scaling.XXXXXX")}"
mkdir -p "$OUT"
build_release -p certkeeper -p certkeeper-bench
export BENCH_NO_BUILD=1

for n in $CORES; do
    server="0"
    ((n == 1)) || server="0-$((n - 1))"
    if [[ "$WORKLOADS" == *" rest "* ]]; then
        log "REST, server on CPUs $server"
        BENCH_SERVER_CPUS="$server" BENCH_JSON_OUT="$OUT/rest-$n.json" \
            bash "$SCRIPT_DIR/run-rest.sh" | tee "$OUT/rest-$n.txt"
        if [[ "$BATCH_OFF" == 1 ]] && ((n > 1)); then
            log "REST, server on CPUs $server, batch scheduling off"
            BENCH_SERVER_CPUS="$server" BENCH_JSON_OUT="$OUT/rest-nobatch-$n.json" \
                BENCH_CK_EXTRA_ENV="CERTKEEPER_SERVER__BATCH_SCHEDULING=false" \
                bash "$SCRIPT_DIR/run-rest.sh" | tee "$OUT/rest-nobatch-$n.txt"
        fi
    fi
    if [[ "$WORKLOADS" == *" acme "* ]]; then
        log "ACME, server on CPUs $server"
        BENCH_SERVER_CPUS="$server" BENCH_JSON_OUT="$OUT/acme-$n.json" BENCH_TARGETS=certkeeper \
            bash "$SCRIPT_DIR/run-acme.sh" | tee "$OUT/acme-$n.txt"
    fi
done

python3 - "$OUT" "$CLIENT_CPUS" $CORES <<'PY' | tee "$OUT/tables.md"
import json, os, sys

out, client_cpus, cores = sys.argv[1], sys.argv[2], [int(c) for c in sys.argv[3:]]

def load(name):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return {r["name"]: r for r in json.load(f)["results"]}

def fmt(value, digits=0):
    return "-" if value is None else f"{value:,.{digits}f}"

def speedup(rate, base):
    return "-" if rate is None or not base else f"{rate / base:.2f}×"

rest = {n: load(f"rest-{n}.json") for n in cores}
if any(rest.values()):
    nobatch = {n: load(f"rest-nobatch-{n}.json") for n in cores}
    print(f"REST issuance, load generator on CPUs {client_cpus}\n")
    print("| server cores | certkeeper /s | × 1 core | µs CPU per cert | cfssl /s | × 1 core | µs CPU per cert | ratio | certkeeper /s, batch scheduling off |")
    print("|---|---|---|---|---|---|---|---|---|")
    base_ck = base_cf = None
    for n in cores:
        r = rest[n] or {}
        ck, cf = r.get("certkeeper"), r.get("cfssl")
        ck_rate = ck and ck["certs_per_sec"]
        cf_rate = cf and cf["certs_per_sec"]
        if base_ck is None:
            base_ck, base_cf = ck_rate, cf_rate
        off = (nobatch[n] or {}).get("certkeeper")
        ratio = f"{ck_rate / cf_rate:.2f}×" if ck_rate and cf_rate else "-"
        print(f"| {n} | {fmt(ck_rate)} | {speedup(ck_rate, base_ck)} | {fmt(ck and ck['server_cpu_us_per_cert'], 1)} "
              f"| {fmt(cf_rate)} | {speedup(cf_rate, base_cf)} | {fmt(cf and cf['server_cpu_us_per_cert'], 1)} "
              f"| {ratio} | {fmt(off and off['certs_per_sec'])} |")
    print()

acme = {n: load(f"acme-{n}.json") for n in cores}
if any(acme.values()):
    print(f"ACME issuance (certkeeper), load generator on CPUs {client_cpus}\n")
    print("| server cores | issuances/s | × 1 core | ms CPU per issuance | p99 ms | errors |")
    print("|---|---|---|---|---|---|")
    base = None
    for n in cores:
        r = (acme[n] or {}).get("certkeeper")
        rate = r and r["issuances_per_sec"]
        if base is None:
            base = rate
        print(f"| {n} | {fmt(rate)} | {speedup(rate, base)} | {fmt(r and r['server_cpu_ms_per_issuance'], 2)} "
              f"| {fmt(r and r['p99_ms'], 1)} | {fmt(r and r['errors'])} |")
PY
log "reports and tables in $OUT"
