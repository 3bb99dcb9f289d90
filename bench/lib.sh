# SPDX-License-Identifier: MIT
# What the benchmark scripts share (sourced, not run): the client and the
# ceiling built from ../shared/bench, a free port, waiting for a server to
# listen, starting tpserver at its defaults, and running the client with
# its CPU time measured.  Expects $bench (where lineload.c and
# limit_echo.c are); bench_scratch sets $work.

# A scratch directory in $work, removed at exit with every process whose
# pid the script adds to the array pids.
bench_scratch() {
	work=$(mktemp -d)
	pids=()
	trap bench_cleanup EXIT
}

bench_cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$work"
}

# Build lineload, and limit_echo with "ceiling", into $work.
bench_build() {
	cc -O2 -pthread -o "$work/lineload" "$bench/lineload.c"
	[[ ${1:-} != ceiling ]] || cc -O2 -pthread -o "$work/limit_echo" "$bench/limit_echo.c"
}

bench_free_port() {
	python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
}

# Wait (up to 5 s) until something listens on 127.0.0.1:PORT.
bench_wait_port() {
	for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
	echo "no server on port $1" >&2
	return 1
}

# Start tpserver BIN at its defaults on PORT in the background ($! is its pid).
bench_start_tpserver() {
	"$1" --config /dev/null --host 127.0.0.1 --port "$2" --log-level warning &
}

# Run a command (the client) and print its output, then its CPU seconds as
# cli_user= cli_sys= (getrusage of the child).
bench_client_cpu() {
	python3 -c 'import resource, subprocess, sys
out = subprocess.run(sys.argv[1:], check=True, stdout=subprocess.PIPE, text=True).stdout
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(out.strip(), "cli_user=%.6f cli_sys=%.6f" % (r.ru_utime, r.ru_stime))' "$@"
}

# utime + stime of process PID, in clock ticks.
bench_cpu_ticks() {
	awk '{print $14 + $15}' "/proc/$1/stat"
}
