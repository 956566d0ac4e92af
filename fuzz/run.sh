#!/usr/bin/env bash
# fuzz/run.sh [SECONDS [TARGET...]]
# Build the fuzz targets and run each (or the ones named) for SECONDS (default 30), starting
# from the seeds in
# corpus/<target>/; fails if any target crashes, leaks, times out on an input or runs out
# of memory (the input is left in artifacts/<target>/). New inputs go to work/<target>/,
# which is not committed. A summary line per target (executions, corpus, findings) is
# printed at the end and kept in work/summary.txt; the full logs are in work/logs/.
#
# Needs the nightly toolchain and cargo-fuzz (`rustup toolchain install nightly`,
# `cargo install cargo-fuzz --locked`); .ci/run installs both when missing.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-30}"
shift || true

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: the nightly toolchain is missing (rustup toolchain install nightly)" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: cargo-fuzz is missing (cargo install cargo-fuzz --locked)" >&2
    exit 2
fi

cargo +nightly fuzz build
mkdir -p work/logs
: > work/summary.txt
failed=()
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)
if [ ${#targets[@]} -eq 0 ]; then
    echo "fuzz/run.sh: no fuzz targets found (cargo fuzz list)" >&2
    exit 2
fi
for t in "${targets[@]}"; do
    mkdir -p "work/$t" "corpus/$t"
    log="work/logs/$t.log"
    echo "== $t: ${secs}s"
    # -timeout: one input may take at most 10 s (a hang is a finding); -rss_limit_mb: the
    # default 2 GiB; -print_final_stats: executions for the record.
    if cargo +nightly fuzz run "$t" "work/$t" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1; then
        result=ok
    else
        result=FAILED
        failed+=("$t")
        tail -n 40 "$log" >&2
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n1)
    corpus=$(find "work/$t" "corpus/$t" -type f | wc -l)
    printf '%-18s %-6s %4ss %12s execs %6s corpus files\n' \
        "$t" "$result" "$secs" "${runs:-?}" "$corpus" | tee -a work/summary.txt
done

echo
cat work/summary.txt
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz/run.sh: ${failed[*]} failed; inputs under fuzz/artifacts/, logs under fuzz/work/logs/" >&2
    exit 1
fi
