#!/usr/bin/env bash
# Discovery benchmark: `certkeeper scan` vs `nmap -Pn --script ssl-cert`, same targets,
# one after the other, in one run. Loopback addresses only.
#
#   (a) sparse: a /16 of loopback addresses on one port, a few dozen TLS listeners in it;
#   (b) dense: thousands of live TLS endpoints (one listener per address of a /20).
#
# Usage: bash bench/run-scan.sh
#
# Environment (all optional):
#   BENCH_SPARSE_NET     default 127.20.0.0/16
#   BENCH_SPARSE_EVERY   a listener every n-th address (default 1500: 44 listeners)
#   BENCH_DENSE_NET      default 127.21.0.0/20 (4095 listeners)
#   BENCH_CONCURRENCY    certkeeper scan --concurrency (default 1024)
#   BENCH_TIMEOUT        certkeeper's per-step timeout in seconds (default 3)
#   BENCH_NMAP_SCRIPT_TIMEOUT  nmap --script-timeout (default 60s: with less, nmap's
#                        ssl-cert gives up on hosts while thousands are in flight)
#   BENCH_KEEP_WORKDIR   1 = keep the temp dir (outputs of both scanners)
#   BENCH_SCANNER_CPUS   CPU list (`taskset -c`) for each scanner in turn (default: unpinned)
#   BENCH_LISTENER_CPUS  CPU list for the TLS listeners (default: unpinned); give the two
#                        disjoint lists so that both scanners meet the same listeners
set -euo pipefail

SPARSE_NET="${BENCH_SPARSE_NET:-127.20.0.0/16}"
SPARSE_EVERY="${BENCH_SPARSE_EVERY:-1500}"
DENSE_NET="${BENCH_DENSE_NET:-127.21.0.0/20}"
CONCURRENCY="${BENCH_CONCURRENCY:-1024}"
TIMEOUT="${BENCH_TIMEOUT:-3}"
NMAP_SCRIPT_TIMEOUT="${BENCH_NMAP_SCRIPT_TIMEOUT:-60s}"
KEEP_WORKDIR="${BENCH_KEEP_WORKDIR:-0}"
SCANNER_CPUS="${BENCH_SCANNER_CPUS:-}"
LISTENER_CPUS="${BENCH_LISTENER_CPUS:-}"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
BENCH_NAME=run-scan
# shellcheck source=bench/lib.sh
source "$SCRIPT_DIR/lib.sh"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/certkeeper-scan-bench.XXXXXX")"
LISTENER_PIDS=()

cleanup() {
    local status=$? pid
    trap - EXIT
    for pid in "${LISTENER_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    drop_workdir "$WORK" "$KEEP_WORKDIR"
    exit "$status"
}
on_exit cleanup
check_cpu_list BENCH_SCANNER_CPUS "$SCANNER_CPUS"
check_cpu_list BENCH_LISTENER_CPUS "$LISTENER_CPUS"
command -v taskset >/dev/null || [[ -z "$SCANNER_CPUS$LISTENER_CPUS" ]] || die "taskset is required to pin"
# Each scanner runs under this prefix (empty: unpinned).
SCAN_PIN=()
[[ -z "$SCANNER_CPUS" ]] || SCAN_PIN=(taskset -c "$SCANNER_CPUS")

for tool in python3 timeout /usr/bin/time; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
command -v nmap >/dev/null || apt_install nmap

build_release -p certkeeper -p certkeeper-bench
CK="$TARGET_DIR/release/certkeeper"
LISTENERS="$TARGET_DIR/release/tls-listeners"

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"

start_listeners() { # NAME NET EVERY COUNT
    (pinned "$LISTENER_CPUS" "$LISTENERS" --net "$2" --every "$3" --count "$4" --port "$PORT" \
        --ready-file "$WORK/$1.addrs" 2>"$WORK/$1.listeners.log") &
    LISTENER_PIDS+=($!)
    local i
    for ((i = 0; i < 600; i++)); do
        [[ -s "$WORK/$1.addrs" ]] && return 0
        sleep 0.1
    done
    die "listeners for $1 not ready"
}

# peak RSS (KiB) and wall seconds from GNU time -v output
rss_of() { awk -F': ' '/Maximum resident set size/ {print $2}' "$1"; }
wall_of() {
    awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$1" |
        awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }'
}

run_case() { # NAME NET
    local name="$1" net="$2"
    local endpoints
    endpoints="$(python3 -c "import ipaddress,sys; print(ipaddress.ip_network('$net').num_addresses)")"
    log "$name: certkeeper scan $net --ports $PORT"
    /usr/bin/time -v -o "$WORK/$name.ck.time" "${SCAN_PIN[@]}" timeout 3600 "$CK" --data-dir "$WORK/no-data" --json \
        scan "$net" --ports "$PORT" --concurrency "$CONCURRENCY" --timeout "$TIMEOUT" \
        >"$WORK/$name.ck.jsonl" 2>"$WORK/$name.ck.err" || die "certkeeper scan failed: $(tail -5 "$WORK/$name.ck.err")"
    log "$name: nmap -Pn -n -p $PORT --script ssl-cert $net"
    /usr/bin/time -v -o "$WORK/$name.nmap.time" "${SCAN_PIN[@]}" timeout 7200 nmap -Pn -n -p "$PORT" \
        --script ssl-cert --script-timeout "$NMAP_SCRIPT_TIMEOUT" -oX "$WORK/$name.nmap.xml" "$net" \
        >"$WORK/$name.nmap.out" 2>&1 || die "nmap failed: $(tail -5 "$WORK/$name.nmap.out")"
    python3 - "$name" "$endpoints" "$WORK" <<'EOF'
import base64, hashlib, json, re, sys
import xml.etree.ElementTree as ET
name, endpoints, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def wall(path):
    for line in open(path):
        if "Elapsed (wall clock)" in line:
            parts = [float(p) for p in line.rsplit(": ", 1)[1].strip().split(":")]
            return sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
def rss(path):
    for line in open(path):
        if "Maximum resident set size" in line:
            return int(line.rsplit(": ", 1)[1]) / 1024
ck = set()
for line in open(f"{work}/{name}.ck.jsonl"):
    o = json.loads(line)
    if o.get("chain") and o["chain"]["certificates"]:
        ck.add((o["address"], o["chain"]["certificates"][0]["fingerprint_sha256"]))
nm = set()
root = ET.parse(f"{work}/{name}.nmap.xml").getroot()
for host in root.iter("host"):
    addr = host.find("address").get("addr")
    for script in host.iter("script"):
        if script.get("id") != "ssl-cert":
            continue
        for elem in script.iter("elem"):
            if elem.get("key") == "pem":
                b64 = "".join(l for l in elem.text.splitlines() if not l.startswith("-----"))
                nm.add((addr, hashlib.sha256(base64.b64decode(b64)).hexdigest()))
expected = sum(1 for l in open(f"{work}/{name}.addrs") if l.strip())
res = {}
for tool, found, t in (("certkeeper", ck, "ck"), ("nmap", nm, "nmap")):
    w = wall(f"{work}/{name}.{t}.time")
    res[tool] = (w, endpoints / w, len(found), rss(f"{work}/{name}.{t}.time"))
    print(f"| {name} | {tool} | {endpoints} | {len(found)}/{expected} | {w:.1f} | {endpoints / w:.0f} | {res[tool][3]:.0f} |")
agree = "yes" if ck == nm else f"NO ({len(ck - nm)} only certkeeper, {len(nm - ck)} only nmap)"
print(f"| {name} | **ratio certkeeper / nmap** | | same findings: {agree} | | **{res['certkeeper'][1] / res['nmap'][1]:.1f}×** | |")
EOF
}

start_listeners sparse "$SPARSE_NET" "$SPARSE_EVERY" 100000
start_listeners dense "$DENSE_NET" 1 100000
log "$(wc -l <"$WORK/sparse.addrs") sparse and $(wc -l <"$WORK/dense.addrs") dense listeners on port $PORT; $(nproc) CPUs; scanners on CPUs ${SCANNER_CPUS:-any}, listeners on ${LISTENER_CPUS:-any}; $(nmap --version | head -n 1)"

echo "| case | scanner | endpoints | certificates found | seconds | endpoints/s | peak RSS MiB |"
echo "|---|---|---|---|---|---|---|"
run_case sparse "$SPARSE_NET"
run_case dense "$DENSE_NET"
