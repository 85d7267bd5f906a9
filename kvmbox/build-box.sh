#!/usr/bin/env bash
# Builds the KVM host in a box: OUTDIR/vmlinuz (Debian's kernel, the one `make guest`
# fetched) and OUTDIR/initrd.img (busybox-static, kvmbox/init, the kernel modules of
# kvmbox/modules.list with their dependencies, and kvmbox-agent). Everything comes from
# the Debian packages the guest build cached in CACHEDIR; nothing is downloaded here.
# usage: kvmbox/build-box.sh OUTDIR GUESTDIR CACHEDIR AGENT
set -euo pipefail
export LC_ALL=C
umask 022
[ $# -eq 4 ] || { echo "usage: $0 OUTDIR GUESTDIR CACHEDIR AGENT" >&2; exit 2; }
src=$(cd "$(dirname "$0")" && pwd)
out=$1 guest=$2 cache=$3 agent=$4
say() { echo "kvmbox: $*"; }
die() { echo "kvmbox: error: $*" >&2; exit 1; }

[ -f "$guest/manifest" ] || die "$guest/manifest is missing: run \`make guest\` first"
kpkg=$(sed -n 's/^kernel_package=//p' "$guest/manifest")
kver=$(sed -n 's/^kernel_release=//p' "$guest/manifest")
kdir=$(ls -d "$cache/unpacked/${kpkg}_"*/ 2>/dev/null | sort -V | tail -n1)
bdir=$(ls -d "$cache/unpacked/busybox-static_"*/ 2>/dev/null | sort -V | tail -n1)
moddir=${kdir%/}/lib/modules/$kver
[ -d "$moddir" ] || die "the modules of $kpkg are not unpacked in $cache: run \`make guest\`"
[ -x "${bdir%/}/bin/busybox" ] || die "busybox-static is not unpacked in $cache: run \`make guest\`"
[ -x "$agent" ] || die "$agent is not built"

stage=$cache/kvmbox-stage
rm -rf "$stage"
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,tmp,host}
install -m 755 "${bdir%/}/bin/busybox" "$stage/bin/busybox"
for applet in sh mount insmod ip cat cut tee poweroff mkdir chmod; do
	ln -sf busybox "$stage/bin/$applet"
done
install -m 755 "$src/init" "$stage/init"
install -m 755 "$agent" "$stage/bin/kvmbox-agent"
. "$src/../guest/modules.sh"
stage_modules "$moddir" "$kver" "$src/modules.list" "$stage"
say "modules: $(printf '%s ' "${order[@]##*/}" | sed 's/\.ko//g')"

mkdir -p "$out"
python3 "$src/../guest/mkcpio.py" --mtime "${SOURCE_DATE_EPOCH:-1700000000}" \
	--node dev/console:c:5:1:600 "$stage" "$out/initrd.img.tmp"
cp "$guest/vmlinuz" "$out/vmlinuz.tmp"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
mv "$out/initrd.img.tmp" "$out/initrd.img"
say "wrote $out/vmlinuz and $out/initrd.img ($(du -k "$out/initrd.img" | cut -f1) KiB; kernel $kpkg)"
