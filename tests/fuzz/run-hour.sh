#!/bin/bash
# One CPU-hour of fuzzing per target named, one after the other, at the lowest priority,
# from a copy of each seed corpus (tests/fuzz/corpus/TARGET) in WORK (default
# /tmp/vdi-fuzz-hour). The fuzzer is stopped (SIGINT, its final stats printed) once its
# own CPU time (utime + stime) reaches an hour, however busy the machine was. Merge what
# it found afterwards:  build/fuzz/TARGET -merge=1 tests/fuzz/corpus/TARGET WORK/corpus/TARGET
# Usage: tests/fuzz/run-hour.sh TARGET...   (after `make fuzz`; logs in WORK/TARGET.log,
# one line per start and end in WORK/progress, crashes as WORK/crash-TARGET-*)
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
work=${WORK:-/tmp/vdi-fuzz-hour}
cpu_limit=${CPU_SECONDS:-3600}
tck=$(getconf CLK_TCK)
mkdir -p "$work/bin" "$work/corpus"
for t in "$@"; do
	cp "$top/build/fuzz/$t" "$work/bin/$t" || exit 2 # a rebuild meanwhile cannot touch it
	rm -rf "$work/corpus/$t"
	cp -r "$top/tests/fuzz/corpus/$t" "$work/corpus/$t"
	start=$(date +%s)
	echo "$t start $(date -Is) corpus $(ls "$work/corpus/$t" | wc -l)" >>"$work/progress"
	nice -n 19 "$work/bin/$t" -print_final_stats=1 -rss_limit_mb=2048 \
		-artifact_prefix="$work/crash-$t-" "$work/corpus/$t" >"$work/$t.log" 2>&1 &
	pid=$!
	cpu=0
	while kill -0 $pid 2>/dev/null; do
		sleep 20
		now=$(awk '{print $14 + $15}' /proc/$pid/stat 2>/dev/null) || break
		[ -n "$now" ] || break
		cpu=$now # the last reading stays for the log line once the fuzzer is gone
		[ "$cpu" -ge $((cpu_limit * tck)) ] && kill -INT $pid
	done
	wait $pid
	rc=$?
	echo "$t end $(date -Is) wall $(($(date +%s) - start)) s cpu $((cpu / tck)) s rc $rc" \
		"corpus $(ls "$work/corpus/$t" | wc -l)" >>"$work/progress"
done
