#!/usr/bin/env bash
# `make demo`: a broker and a host agent on loopback with the demo users of conf/demo/,
# a pool of Linux desktops ("linux", QEMU engine) and a pool of vdi-hv demo desktops
# ("demo-desktop", the freestanding guest build/guests/desktop.elf). Prints the portal's
# URL and the logins, then runs until Ctrl-C / SIGTERM, which stops the broker, every VM
# and the host agent. Run from anywhere after `make all guest web-static`.
#
# usage: demo/run-demo.sh [--smoke]
#   --smoke   start everything, log in as alice with curl, list her desktops, stop
#             everything; exit 0 when all of it worked, 1 otherwise.
# Environment: VDI_DEMO_DIR (state, default build/demo, build/demo-smoke for --smoke;
#   its broker and hostd state are wiped on each start),
#   VDI_DEMO_PORT (portal, default 9443; --smoke: a free port), VDI_BUILD (default build).
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$TOP"
BUILD=$(realpath -m "${VDI_BUILD:-build}")
BIN=$BUILD/bin
CERTS=$BUILD/certs
SMOKE=0
case "${1:-}" in
--smoke) SMOKE=1 ;;
"") ;;
*) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
esac

# --smoke keeps apart from a demo that is running
if [ $SMOKE = 1 ]; then DEMO=${VDI_DEMO_DIR:-$BUILD/demo-smoke}; else DEMO=${VDI_DEMO_DIR:-$BUILD/demo}; fi
DEMO=$(realpath -m "$DEMO")
TPL=$DEMO/templates
LOGS=$DEMO/logs
HOSTD_STATE=$DEMO/hostd
BROKER_STATE=$DEMO/broker
# unix socket paths under run_dir must fit in 108 bytes: keep it short, under /tmp
RUN_DIR_FILE=$DEMO/run_dir

say() { printf 'demo: %s\n' "$*"; }
die() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

KVMBOX=$TOP/build/bin/kvmbox
for f in "$BIN/vdi-broker" "$BIN/vdi-hostd" "$BIN/vdi-hv" "$BIN/vdictl" "$KVMBOX" \
	"$BUILD/guest/vmlinuz" "$BUILD/guest/initrd.img" "$BUILD/guest/home.img" \
	"$BUILD/guests/desktop.elf" "$BUILD/web/static/index.html"; do
	[ -e "$f" ] || die "$f is missing: run 'make all guest kvmbox web-static' (or 'make demo')"
done
for t in curl python3 openssl; do command -v $t >/dev/null || die "$t is not installed"; done

if [ $SMOKE = 1 ] && [ -z "${VDI_DEMO_PORT:-}" ]; then
	PORT=$(free_port) HB_PORT=$(free_port) API_PORT=$(free_port) RELAY_PORT=$(free_port)
else
	PORT=${VDI_DEMO_PORT:-9443}
	HB_PORT=${VDI_DEMO_HB_PORT:-$((PORT + 1))}
	API_PORT=${VDI_DEMO_API_PORT:-8443}
	RELAY_PORT=${VDI_DEMO_RELAY_PORT:-5900}
fi
URL=https://127.0.0.1:$PORT

BROKER_PID= HOSTD_PID= RUN_DIR= CLEANED=0 BOX=

# ---- stopping ----------------------------------------------------------------------

hostd_api() { # METHOD PATH [BODY]
	curl -sS --max-time 10 --cacert "$CERTS/ca.crt" --cert "$CERTS/broker.crt" \
		--key "$CERTS/broker.key" -X "$1" ${3:+-H 'Content-Type: application/json' -d "$3"} \
		"https://127.0.0.1:$API_PORT/api/v1$2"
}

# "id state" per desktop hostd knows
hostd_desktops() {
	hostd_api GET /desktops 2>/dev/null | python3 -c '
import json, sys
for d in json.load(sys.stdin).get("desktops", []):
    print(d.get("id"), d.get("state"))' 2>/dev/null
}

# pids (VMM, monitor) recorded in a run directory's pid files
recorded_pids() {
	local dir=$1 f
	[ -n "$dir" ] && [ -d "$dir" ] || return 0
	for f in "$dir"/*/vmm.pid; do
		[ -f "$f" ] || continue
		awk '{print $1; print $3}' "$f"
	done
}

# processes of this demo still alive: anything whose command line names the demo or
# run directory (the VMMs' disks, sockets and logs are there), and the recorded pids
our_pids() {
	local p
	{
		for p in $(pgrep -f -- "$DEMO/" 2>/dev/null) $(pgrep -f -- "${RUN_DIR:-/nonexistent-run-dir}" 2>/dev/null) \
			$(recorded_pids "$RUN_DIR") $BROKER_PID $HOSTD_PID; do
			[ "$p" = $$ ] && continue
			[ "$p" = "$BASHPID" ] && continue
			[ -d "/proc/$p" ] || continue
			grep -qs zombie "/proc/$p/status" 2>/dev/null && continue
			# only our programs (not, say, an editor with a demo file open)
			case "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" in
			*vdi-broker* | *vdi-hostd* | *vdi-hv* | *kvmbox* | *qemu-system* | *qemu-img*) echo "$p" ;;
			esac
		done
	} | sort -un
}

wait_gone() { # timeout-seconds pid...
	local deadline=$((SECONDS + $1)) p alive
	shift
	while :; do
		alive=
		for p in "$@"; do
			[ -d "/proc/$p" ] && ! grep -qs zombie "/proc/$p/status" && alive=1
		done
		[ -z "$alive" ] && return 0
		[ $SECONDS -ge $deadline ] && return 1
		sleep 0.2
	done
}

stop_all() {
	[ $CLEANED = 1 ] && return 0
	CLEANED=1
	trap '' INT TERM
	say "stopping"
	# the broker first, so it does not start new spare desktops
	if [ -n "$BROKER_PID" ] && kill -0 "$BROKER_PID" 2>/dev/null; then
		kill -TERM "$BROKER_PID" 2>/dev/null || true
		wait_gone 30 "$BROKER_PID" || kill -KILL "$BROKER_PID" 2>/dev/null || true
	fi
	# then the desktops, through hostd's API: a forced stop, then removal
	if [ -n "$HOSTD_PID" ] && kill -0 "$HOSTD_PID" 2>/dev/null; then
		local id state n=0
		while read -r id state; do
			[ -n "$id" ] || continue
			case $state in stopped | failed) ;; *) hostd_api POST "/desktops/$id/stop" '{"force":true}' >/dev/null 2>&1 || true ;; esac
		done < <(hostd_desktops)
		while [ $n -lt 75 ] && hostd_desktops | grep -qv ' stopped$\| failed$'; do
			sleep 0.2
			n=$((n + 1))
		done
		while read -r id state; do
			[ -n "$id" ] && hostd_api DELETE "/desktops/$id" >/dev/null 2>&1 || true
		done < <(hostd_desktops)
		kill -TERM "$HOSTD_PID" 2>/dev/null || true
		wait_gone 30 "$HOSTD_PID" || kill -KILL "$HOSTD_PID" 2>/dev/null || true
	fi
	# the KVM box last: the vdi-hv desktops ran in it
	[ -n "$BOX" ] && "$KVMBOX" stop "$BOX" >/dev/null 2>&1
	# whatever is left (hostd could not stop it, or it died): the recorded VMMs and
	# monitors (a monitor leads its VMM's process group), then anything of ours
	local p left
	for p in $(recorded_pids "$RUN_DIR"); do
		kill -KILL -- "-$p" 2>/dev/null || true
		kill -KILL "$p" 2>/dev/null || true
	done
	left=$(our_pids)
	if [ -n "$left" ]; then
		kill -TERM $left 2>/dev/null || true
		wait_gone 5 $left || kill -KILL $left 2>/dev/null || true
		wait_gone 5 $left || true
	fi
	left=$(our_pids)
	[ -n "$RUN_DIR" ] && rm -rf "$RUN_DIR"
	if [ -n "$left" ]; then
		say "still running after stop:"
		ps -o pid,args -p "$(echo $left | tr ' ' ,)" >&2 || true
		return 1
	fi
	say "stopped: no vdi-broker, vdi-hostd, vdi-hv or qemu process of the demo is left"
	return 0
}

fail() {
	printf 'demo: error: %s\n' "$*" >&2
	for l in "$LOGS"/broker.log "$LOGS"/hostd.log; do
		[ -f "$l" ] && { echo "---- last lines of $l" >&2; tail -n 20 "$l" >&2; }
	done
	stop_all || true
	exit 1
}

on_signal() {
	echo
	if stop_all; then exit 0; else exit 1; fi
}

# ---- setting up ------------------------------------------------------------------------

# one demo per directory at a time (daemons do not inherit the lock: 9>&- below)
mkdir -p "$DEMO"
exec 9>"$DEMO/.lock"
flock -n 9 || die "another demo is running in $DEMO (set VDI_DEMO_DIR for a second one)"

# a previous run that was killed outright may have left VMs (and a KVM box) behind:
# end them first
[ -f "$DEMO/kvmbox/qemu.pid" ] && "$KVMBOX" stop "$DEMO/kvmbox" >/dev/null 2>&1
if [ -f "$RUN_DIR_FILE" ]; then
	RUN_DIR=$(cat "$RUN_DIR_FILE")
	case $RUN_DIR in /tmp/vdi-demo-*) ;; *) RUN_DIR= ;; esac
	if [ -n "$(our_pids)" ]; then
		say "ending what a previous demo left running"
		CLEANED=0
		stop_all >/dev/null || die "could not end the previous demo's processes"
		CLEANED=0
	fi
	[ -n "$RUN_DIR" ] && rm -rf "$RUN_DIR"
	RUN_DIR=
fi

for p in $PORT $HB_PORT $API_PORT $RELAY_PORT; do
	port_busy "$p" && die "port $p on 127.0.0.1 is in use (another demo running? set VDI_DEMO_PORT)"
done

rm -rf "$BROKER_STATE" "$HOSTD_STATE" "$LOGS" "$DEMO/home"
mkdir -p "$TPL" "$LOGS" "$BROKER_STATE" "$HOSTD_STATE" "$DEMO/home"
if [ ! -f "$CERTS/ca.crt" ] || [ ! -f "$CERTS/hosts/demo-host.crt" ] || [ ! -f "$CERTS/broker.crt" ]; then
	hostd/mkcerts.sh "$CERTS" demo-host >/dev/null
fi

# templates: the Linux image (its home disk is a copy, the base of the desktops'
# copy-on-write overlays) and the demo desktop guest with a small empty disk
for f in vmlinuz initrd.img; do
	cmp -s "$BUILD/guest/$f" "$TPL/$f" || cp "$BUILD/guest/$f" "$TPL/$f"
done
cmp -s "$BUILD/guest/home.img" "$TPL/home.img" || cp "$BUILD/guest/home.img" "$TPL/home.img"
cmp -s "$BUILD/guests/desktop.elf" "$TPL/desktop.elf" || cp "$BUILD/guests/desktop.elf" "$TPL/desktop.elf"
[ -f "$TPL/desktop-disk.img" ] || truncate -s 1M "$TPL/desktop-disk.img"

RUN_DIR=$(mktemp -d /tmp/vdi-demo-XXXXXX)
echo "$RUN_DIR" >"$RUN_DIR_FILE"

trap on_signal INT TERM
trap 'stop_all >/dev/null 2>&1 || true' EXIT

# vdi-hv needs KVM: this machine's when it runs at hardware speed, else the KVM host in a
# box (build/bin/kvmbox), which vdi-hostd runs every vdi-hv through (its launcher).
KVM_CHOICE=$("$KVMBOX" probe) || fail "kvmbox probe failed"
LAUNCHER=
case $KVM_CHOICE in
box:*)
	BOX=$DEMO/kvmbox
	say "no hardware KVM here (${KVM_CHOICE#box: }): starting the KVM host in a box for vdi-hv"
	"$KVMBOX" start --memory 2048 "$BOX" >"$LOGS/kvmbox.log" 2>&1 ||
		{ cat "$LOGS/kvmbox.log" >&2; fail "the KVM box did not start (see $LOGS/kvmbox.log)"; }
	say "$(tail -n 1 "$LOGS/kvmbox.log")"
	LAUNCHER="$KVMBOX run --box $BOX --"
	KVM_NOTE="vdi-hv desktops run in the KVM host in a box ($BOX): slower than hardware, working"
	;;
*) KVM_NOTE="vdi-hv desktops run on this machine's KVM (${KVM_CHOICE#direct: })" ;;
esac

cat >"$DEMO/hostd.conf" <<EOF
# Written by demo/run-demo.sh; see conf/hostd.conf for every option.
[hostd]
host_id = demo-host
state_dir = $HOSTD_STATE
run_dir = $RUN_DIR
template_dirs = $TPL
log_level = info
[api]
listen = 127.0.0.1:$API_PORT
cert = $CERTS/hosts/demo-host.crt
key = $CERTS/hosts/demo-host.key
ca = $CERTS/ca.crt
[relay]
listen = 127.0.0.1:$RELAY_PORT
[broker]
heartbeat_url = https://127.0.0.1:$HB_PORT/api/v1/hosts/heartbeat
heartbeat_interval = 1s
[desktops]
default_engine = qemu
max_memory_mib = 4096
stop_timeout = 5s
[qemu]
# KVM when it measures at hardware speed, TCG otherwise
accel = auto
machine = pc
[vdi-hv]
binary = $BIN/vdi-hv
launcher = $LAUNCHER
EOF

# conf/demo/broker.conf with its paths and ports moved into the demo directory
sed -e "s|^state_dir *=.*|state_dir = $BROKER_STATE|" \
	-e "s|^listen *=.*|listen = 127.0.0.1:$PORT|" \
	-e "s|^static_dir *=.*|static_dir = $BUILD/web/static|" \
	-e "s|^cert *=.*|cert = $CERTS/broker.crt|" \
	-e "s|^key *=.*|key = $CERTS/broker.key|" \
	-e "s|^ca *=.*|ca = $CERTS/ca.crt|" \
	-e "s|^heartbeat_listen *=.*|heartbeat_listen = 127.0.0.1:$HB_PORT|" \
	-e "s|^users_file *=.*|users_file = $TOP/conf/demo/users.ini|" \
	conf/demo/broker.conf >"$DEMO/broker.conf"
grep -q "^static_dir = $BUILD/web/static" "$DEMO/broker.conf" || fail "could not adjust conf/demo/broker.conf"

"$BIN/vdi-hostd" -n -c "$DEMO/hostd.conf" >/dev/null || fail "vdi-hostd refuses $DEMO/hostd.conf"

# each daemon in a session (and process group) of its own: Ctrl-C reaches only this
# script, which stops them in order
setsid "$BIN/vdi-hostd" -c "$DEMO/hostd.conf" >"$LOGS/hostd.log" 2>&1 </dev/null 9>&- &
HOSTD_PID=$!
setsid "$BIN/vdi-broker" -c "$DEMO/broker.conf" >"$LOGS/broker.log" 2>&1 </dev/null 9>&- &
BROKER_PID=$!

wait_ready() { # name pid log
	local deadline=$((SECONDS + 30))
	until grep -q " ready" "$3" 2>/dev/null; do
		kill -0 "$2" 2>/dev/null || fail "$1 exited"
		[ $SECONDS -lt $deadline ] || fail "$1 did not get ready in 30 s"
		sleep 0.1
	done
}
wait_ready vdi-hostd "$HOSTD_PID" "$LOGS/hostd.log"
wait_ready vdi-broker "$BROKER_PID" "$LOGS/broker.log"
BCA=$BROKER_STATE/https.crt
deadline=$((SECONDS + 30))
until curl -s -o /dev/null --max-time 2 --cacert "$BCA" "$URL/"; do
	[ $SECONDS -lt $deadline ] || fail "the broker does not answer on $URL"
	sleep 0.2
done

vdictl() {
	HOME=$DEMO/home "$BIN/vdictl" -u "$URL" --ca "$BCA" "$@" >>"$LOGS/vdictl.log" 2>&1 ||
		fail "vdictl $* failed (see $LOGS/vdictl.log)"
}
vdictl login admin <<<"admin-demo"
vdictl hosts add demo-host "https://127.0.0.1:$API_PORT" "127.0.0.1:$RELAY_PORT"
vdictl pools create linux --name "Linux desktop" --kind floating --source automated \
	--min 1 --spare 1 --max 2 --memory 512 --engine qemu --kernel vmlinuz \
	--initrd initrd.img --disk home.img --cmdline "console=ttyS0 console=tty0 vga=0x344 panic=-1"
vdictl entitlements add linux group staff
vdictl pools create demo-desktop --name "Demo desktop (vdi-hv)" --kind floating \
	--source automated --min 1 --spare 1 --max 2 --memory 64 --engine vdi-hv \
	--kernel desktop.elf --disk desktop-disk.img
vdictl entitlements add demo-desktop group staff
vdictl pools create linux-hv --name "Linux desktop (vdi-hv)" --kind floating --source automated \
	--min 0 --spare 0 --max 2 --memory 512 --engine vdi-hv --kernel vmlinuz \
	--initrd initrd.img --disk home.img --cmdline "console=ttyS0 console=tty0 panic=-1"
vdictl entitlements add linux-hv group staff

# Each pool and whether its engine can run here, once the host has reported (heartbeat).
pool_health() {
	HOME=$DEMO/home "$BIN/vdictl" -u "$URL" --ca "$BCA" --json pools list 2>>"$LOGS/vdictl.log" |
		python3 -c '
import json, sys
pools = json.load(sys.stdin)["pools"]
for p in pools:
    engine = (p.get("template") or {}).get("engine") or "default"
    h = p.get("health") or {}
    state = h.get("state", "?")
    line = "  %-14s %-8s %s" % (p["id"], engine, "available" if state == "ok" else state.upper())
    if h.get("detail"):
        line += ": " + h["detail"]
    print(line)
'
}
host_up() {
	HOME=$DEMO/home "$BIN/vdictl" -u "$URL" --ca "$BCA" --json hosts list 2>/dev/null |
		python3 -c '
import json, sys
hosts = json.load(sys.stdin)["hosts"]
sys.exit(0 if any(h.get("state") == "up" for h in hosts) else 1)'
}
deadline=$((SECONDS + 30))
until host_up; do
	[ $SECONDS -lt $deadline ] || break
	sleep 0.5
done
POOLS=$(pool_health) || POOLS="  (cannot list the pools: see $LOGS/vdictl.log)"

cat <<EOF

  vdi demo is running:  $URL/
  (the certificate is self-signed, made by the broker in $BCA: accept it in the browser)

  Logins:  alice / alice-demo   bob / bob-demo   (desktops: "linux" on QEMU, "demo-desktop"
           and "linux-hv" on vdi-hv)
  KVM:     $KVM_NOTE
           admin / admin-demo   (administrator; also: HOME=$DEMO/home $BIN/vdictl -u $URL --ca $BCA pools list)
  Logs:    $LOGS/

  Pools (engine, whether this machine can run it now):
$POOLS
EOF
case $POOLS in *UNAVAILABLE* | *DEGRADED*) say "warning: some pools cannot run here (above)" >&2 ;; esac

if [ $SMOKE = 1 ]; then
	ok=1
	jar=$DEMO/smoke-cookies
	rm -f "$jar"
	code=$(curl -sS --max-time 30 --cacert "$BCA" -c "$jar" -o "$DEMO/smoke-login.json" -w '%{http_code}' \
		-H 'Content-Type: application/json' -d '{"username":"alice","password":"alice-demo"}' \
		"$URL/api/v1/login") || code=000
	say "smoke: POST /api/v1/login as alice: $code"
	[ "$code" = 200 ] || ok=0
	code=$(curl -sS --max-time 30 --cacert "$BCA" -b "$jar" -o "$DEMO/smoke-desktops.json" -w '%{http_code}' \
		"$URL/api/v1/desktops") || code=000
	say "smoke: GET /api/v1/desktops: $code $(head -c 400 "$DEMO/smoke-desktops.json" 2>/dev/null)"
	echo
	[ "$code" = 200 ] || ok=0
	for pool in linux demo-desktop linux-hv; do
		grep -q "\"$pool\"" "$DEMO/smoke-desktops.json" 2>/dev/null || { say "smoke: pool $pool not listed"; ok=0; }
	done
	# the vdi-hv desktop starts in about a second (more in a KVM box): wait for hostd
	# to run it, so the stop below has a vdi-hv VM to end
	deadline=$((SECONDS + 60))
	until hostd_api GET /desktops 2>/dev/null | python3 -c '
import json, sys
sys.exit(0 if any(d.get("engine") == "vdi-hv" and d.get("state") == "running"
                  for d in json.load(sys.stdin).get("desktops", [])) else 1)' 2>/dev/null; do
		[ $SECONDS -lt $deadline ] || { say "smoke: no vdi-hv desktop running on hostd after 60 s"; ok=0; break; }
		sleep 0.3
	done
	say "smoke: hostd desktops: $(hostd_desktops | tr '\n' ' ')"
	stop_all || ok=0
	trap - EXIT
	if [ $ok = 1 ]; then say "smoke: ok"; exit 0; fi
	say "smoke: FAILED"
	exit 1
fi

say "Ctrl-C stops the demo"
while :; do
	sleep 1 &
	wait $! || true
	kill -0 "$BROKER_PID" 2>/dev/null || fail "vdi-broker exited"
	kill -0 "$HOSTD_PID" 2>/dev/null || fail "vdi-hostd exited"
done
