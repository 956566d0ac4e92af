# Shell helpers shared by the bench/run-*.sh scripts. Source it after setting
# BENCH_NAME (the prefix of log lines).

log() { printf '[%s] %s\n' "${BENCH_NAME:-bench}" "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# apt_install PACKAGE...: installs Debian packages (as root, or through sudo -n).
apt_install() {
    local sudo=()
    if [[ "$(id -u)" -ne 0 ]]; then
        command -v sudo >/dev/null || die "not root and no sudo: install $* yourself"
        sudo=(sudo -n)
    fi
    log "installing $*"
    timeout 600 "${sudo[@]}" apt-get update -q >&2 || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive timeout 600 "${sudo[@]}" apt-get install -y -q "$@" >&2 ||
        die "apt-get install $* failed"
}

# build_release CARGO_ARGS...: `cargo build --release CARGO_ARGS` in the workspace ($ROOT),
# unless BENCH_NO_BUILD=1: then the release binaries already in the target directory are
# used as they are (a machine without a Rust toolchain, binaries copied there).
build_release() {
    if [[ "${BENCH_NO_BUILD:-0}" == 1 ]]; then
        log "BENCH_NO_BUILD=1: using the binaries already in ${TARGET_DIR:-target}/release"
        return 0
    fi
    log "building release binaries ($*)"
    (cd "$ROOT" && timeout "${BENCH_BUILD_TIMEOUT:-3600}" cargo build --release "$@") >&2 ||
        die "cargo build failed"
}

# stop_pid PID NAME: SIGTERM, up to 10 s grace, then SIGKILL.
stop_pid() {
    local pid="$1" name="$2" i
    [[ -n "$pid" ]] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name did not stop after SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# free_ports N: prints N distinct TCP ports on 127.0.0.1 that were free a moment ago.
free_ports() {
    python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print("\n".join(str(s.getsockname()[1]) for s in socks))
PY
}

# wait_until TIMEOUT PID NAME CMD...: runs CMD every 0.2 s until it succeeds,
# failing if PID exits or TIMEOUT seconds pass.
wait_until() {
    local timeout="$1" pid="$2" name="$3"
    shift 3
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        kill -0 "$pid" 2>/dev/null || die "$name exited during startup"
        ((SECONDS < deadline)) || die "$name not ready after ${timeout}s"
        sleep 0.2
    done
}

# finish_workdir STATUS DIR KEEP: after a failure (STATUS not 0) shows the end of every
# log in DIR; then removes DIR, unless KEEP is 1.
finish_workdir() {
    local status="$1" dir="$2" f
    if [[ "$status" -ne 0 ]]; then
        for f in "$dir"/*.log; do
            [[ -s "$f" ]] || continue
            log "last lines of $f:"
            tail -n 20 "$f" >&2 || true
        done
    fi
    drop_workdir "$dir" "$3"
}

# drop_workdir DIR KEEP: removes the work dir, unless KEEP is 1.
drop_workdir() {
    if [[ "$2" == 1 ]]; then log "kept work dir $1"; else rm -rf "$1"; fi
}

# on_exit FUNCTION: runs FUNCTION on exit, and turns SIGINT/SIGTERM into an exit.
on_exit() {
    # shellcheck disable=SC2064
    trap "$1" EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# pinned CPUS COMMAND...: runs COMMAND on the CPUs in CPUS (a `taskset -c` list such as
# `0` or `2-5`), or unpinned when CPUS is empty. Execs, so COMMAND keeps the caller's pid.
pinned() {
    local cpus="$1"
    shift
    if [[ -n "$cpus" ]]; then
        command -v taskset >/dev/null || die "taskset is required to pin to CPUs $cpus"
        exec taskset -c "$cpus" "$@"
    fi
    exec "$@"
}

# check_cpu_list NAME VALUE: dies unless VALUE is empty or a `taskset -c` CPU list.
check_cpu_list() {
    [[ -z "$2" || "$2" =~ ^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$ ]] ||
        die "$1 must be a CPU list such as 0 or 0-3,8, got '$2'"
}
