#!/usr/bin/env bash
# Builds the vdi desktop guest's kernel and initramfs: fetches Debian's generic amd64
# kernel and busybox-static with `apt-get download` into a cache (no network needed once
# cached), checks the kernel has what the guest needs, and writes OUTDIR/vmlinuz and
# OUTDIR/initrd.img (busybox, guest/init and friends, the modules from guest/modules.list,
# the console font).
# usage: guest/build-image.sh OUTDIR CACHEDIR   (GUEST_KERNEL_PKG=... pins the kernel;
#        GUEST_FONT=FILE.psf[.gz] picks the console font, default console-setup-linux's
#        Lat15-Fixed16)
set -euo pipefail
export LC_ALL=C PATH="$PATH:/usr/sbin:/sbin"
umask 022

[ $# -eq 2 ] || { echo "usage: $0 OUTDIR CACHEDIR" >&2; exit 2; }
src=$(cd "$(dirname "$0")" && pwd)
out=$1
cache=$2
mkdir -p "$out" "$cache"
out=$(cd "$out" && pwd)
cache=$(cd "$cache" && pwd)

say() { echo "guest: $*"; }
die() { echo "guest: error: $*" >&2; exit 1; }

# --- fetching: the candidate version from apt's lists, else the newest one cached ---

# cached_deb PKG [VERSION]: prints the cached .deb of PKG (at VERSION if given).
cached_deb() {
	local f best=
	for f in "$cache/debs/$1"_*.deb; do
		[ -f "$f" ] || continue
		if [ -n "${2:-}" ]; then
			[ "$(dpkg-deb -f "$f" Version)" = "$2" ] && { echo "$f"; return 0; }
		elif [ -z "$best" ] || dpkg --compare-versions "$(dpkg-deb -f "$f" Version)" gt "$(dpkg-deb -f "$best" Version)"; then
			best=$f
		fi
	done
	[ -n "$best" ] && echo "$best"
}

# fetch PKG: prints the path of PKG's .deb, downloading apt's candidate when not cached.
fetch() {
	local pkg=$1 ver deb opts=()
	ver=$({ apt-cache policy "$pkg" 2>/dev/null || true; } | sed -n 's/^ *Candidate: //p')
	[ "$ver" = "(none)" ] && ver=
	if [ -n "$ver" ] && deb=$(cached_deb "$pkg" "$ver"); then
		echo "$deb"
		return
	fi
	if [ -n "$ver" ]; then
		say "downloading $pkg $ver" >&2
		[ "$(id -u)" = 0 ] && opts=(-o APT::Sandbox::User=root)
		rm -rf "$cache/debs/tmp" && mkdir -p "$cache/debs/tmp"
		if (cd "$cache/debs/tmp" && apt-get download -qq "${opts[@]}" "$pkg=$ver" >&2); then
			rm -f "$cache/debs/$pkg"_*.deb
			mv "$cache/debs/tmp/"*.deb "$cache/debs/"
			rm -rf "$cache/debs/tmp"
			cached_deb "$pkg" "$ver"
			return
		fi
		rm -rf "$cache/debs/tmp"
	fi
	deb=$(cached_deb "$pkg") || die "cannot get $pkg: not in apt's lists (run apt-get update) or download failed, and not cached in $cache/debs"
	say "warning: using cached $(basename "$deb"), apt has ${ver:-no version of $pkg}" >&2
	echo "$deb"
}

# unpack DEB: prints the directory DEB is unpacked in (once per version).
unpack() {
	local dir
	dir="$cache/unpacked/$(basename "$1" .deb)"
	if [ ! -e "$dir/.unpacked" ]; then
		rm -rf "$dir" && mkdir -p "$dir"
		dpkg-deb -x "$1" "$dir"
		touch "$dir/.unpacked"
	fi
	echo "$dir"
}

# The console font /init loads on the framebuffer console, so that what the screen shows
# is drawn with a known font (tests read text back from the pixels): from the host's
# console-setup-linux (a build dependency, see `make deps`), as the demo guest's font.
font=${GUEST_FONT:-/usr/share/consolefonts/Lat15-Fixed16.psf.gz}
[ -f "$font" ] || die "no console font $font: install the Debian package console-setup-linux or set GUEST_FONT"
font=$(cd "$(dirname "$font")" && pwd)/$(basename "$font")
fontpkg=$(dpkg-query -S "$font" 2>/dev/null | sed -n '1s/:.*//p') || true
[ -n "$fontpkg" ] && fontpkg="$fontpkg $(dpkg-query -W -f='${Version}' "$fontpkg" 2>/dev/null)"

mkdir -p "$cache/debs"
kpkg=${GUEST_KERNEL_PKG:-$({ apt-cache depends --important linux-image-amd64 2>/dev/null || true; } |
	sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1)}
if [ -z "$kpkg" ]; then
	kdeb=$(printf '%s\n' "$cache/debs"/linux-image-[0-9]*-amd64_*.deb | sort -V | tail -n1)
	[ -f "$kdeb" ] || die "no linux-image-amd64 in apt's lists (run apt-get update) and no kernel cached"
	kpkg=$(dpkg-deb -f "$kdeb" Package)
fi
case "$kpkg" in
linux-image-[0-9]*-[0-9]*-amd64) ;;
*) die "$kpkg: want the generic amd64 flavour (linux-image-6.1.0-N-amd64): -cloud lacks vesafb" ;;
esac
kdeb=$(fetch "$kpkg")
bdeb=$(fetch busybox-static)
kdir=$(unpack "$kdeb")
bdir=$(unpack "$bdeb")
busybox=$bdir/bin/busybox
[ -x "$busybox" ] || die "$bdeb has no bin/busybox"

kver=$(basename "$(ls -d "$kdir"/lib/modules/*/)")
vmlinuz=$kdir/boot/vmlinuz-$kver
moddir=$kdir/lib/modules/$kver
[ -f "$vmlinuz" ] || die "no $vmlinuz"
# Debian's package leaves modules.dep to depmod at install time: make it here, with
# busybox's depmod (the host needs no kmod).
if [ ! -s "$moddir/modules.dep" ]; then
	say "depmod $kver"
	"$busybox" depmod -b "$kdir" "$kver"
fi

# --- the kernel must have, built in, what the guest relies on before any module ---
for opt in BLK_DEV_INITRD RD_GZIP DEVTMPFS TMPFS UNIX VT VT_CONSOLE SERIAL_8250 \
	SERIAL_8250_CONSOLE FB FRAMEBUFFER_CONSOLE SYSFB FB_VESA FB_EFI SERIO_I8042 ACPI; do
	grep -qx "CONFIG_$opt=y" "$kdir/boot/config-$kver" || die "$kpkg: CONFIG_$opt is not built in"
done

# --- stage the initramfs tree ---
stage=$cache/initrd-stage
rm -rf "$stage"
mkdir -p "$stage"
cd "$stage"
mkdir -p bin sbin usr/bin usr/sbin etc/udhcpc etc/acpi/PWRF dev proc sys tmp run mnt root \
	home var/log "lib/modules/$kver"
chmod 1777 tmp
chmod 700 root
install -m 755 "$busybox" bin/busybox
"$busybox" --list-full | while read -r applet; do
	case "$applet" in bin/busybox | linuxrc) continue ;; esac
	rel=$(dirname "$applet" | sed 's:[^/][^/]*:..:g')
	ln -sf "$rel/bin/busybox" "$applet"
done
install -m 755 "$src/init" init
install -m 644 "$src/inittab" etc/inittab
install -m 644 "$src/profile" etc/profile
install -m 755 "$src/rc.shutdown" etc/rc.shutdown
install -m 755 "$src/console-shell" sbin/console-shell
install -m 755 "$src/vdi-banner" sbin/vdi-banner
install -m 755 "$src/udhcpc.script" etc/udhcpc/default.script
install -m 755 "$src/acpi-power-button" etc/acpi/PWRF/00000080
mkdir -p usr/share/consolefonts
case "$font" in
*.gz) gzip -dc "$font" >usr/share/consolefonts/console.psf ;; # busybox loadfont reads it unpacked
*) cp "$font" usr/share/consolefonts/console.psf ;;
esac
chmod 644 usr/share/consolefonts/console.psf
printf 'root:x:0:0:root:/home:/bin/sh\n' >etc/passwd
printf 'root:x:0:\ntty:x:5:\n' >etc/group
printf 'root:*:0:0:99999:7:::\n' >etc/shadow
chmod 600 etc/shadow
printf '/dev/root / rootfs rw 0 0\n' >etc/fstab
: >etc/resolv.conf
bbver=$(dpkg-deb -f "$bdeb" Version)
kpver=$(dpkg-deb -f "$kdeb" Version)
cat >etc/os-release <<OSR
NAME="vdi desktop guest"
ID=vdi-guest
PRETTY_NAME="vdi desktop guest (Debian $kpkg $kpver, busybox $bbver)"
OSR

# --- modules: each wanted one with its dependencies from modules.dep, in load order ---
. "$src/modules.sh"
stage_modules "$moddir" "$kver" "$src/modules.list" "$stage"
cp "$moddir/modules.builtin" "$moddir/modules.order" "lib/modules/$kver/"
"$busybox" depmod -b "$stage" "$kver" # for modprobe in the guest
say "kernel $kpkg $kpver; busybox $bbver"
say "modules: $(printf '%s ' "${order[@]##*/}" | sed 's/\.ko//g')(built in: ${builtins[*]:-none})"

# --- outputs, each replaced in one step ---
python3 "$src/mkcpio.py" --mtime "${SOURCE_DATE_EPOCH:-1700000000}" --node dev/console:c:5:1:600 \
	"$stage" "$out/initrd.img.tmp"
cp "$vmlinuz" "$out/vmlinuz.tmp"
{
	echo "kernel_package=$kpkg"
	echo "kernel_version=$kpver"
	echo "kernel_release=$kver"
	echo "busybox_version=$bbver"
	echo "console_font=$(basename "$font")${fontpkg:+ ($fontpkg)}"
	echo "modules=$(printf '%s ' "${order[@]##*/}" | sed 's/\.ko//g; s/ $//')"
} >"$out/manifest.tmp"
mv "$out/manifest.tmp" "$out/manifest"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
mv "$out/initrd.img.tmp" "$out/initrd.img"
say "wrote $out/vmlinuz ($(du -k "$out/vmlinuz" | cut -f1) KiB), $out/initrd.img ($(du -k "$out/initrd.img" | cut -f1) KiB)"
