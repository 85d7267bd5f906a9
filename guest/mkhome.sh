#!/usr/bin/env bash
# Builds the vdi desktop guest's persistent home disk: a small ext4 image (label vdi-home,
# no partition table) made with `mkfs.ext4 -d` from a staged directory, so no root and no
# loop mount are needed. Fixed UUID, hash seed, owners and times: the same bytes each time.
# usage: guest/mkhome.sh OUT.img [SIZE_MIB]    (the guest mounts it on /home)
set -euo pipefail
export LC_ALL=C PATH="$PATH:/usr/sbin:/sbin"
umask 022

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 OUT.img [SIZE_MIB]" >&2
	exit 2
fi
out=$1
size=${2:-64}
epoch=${SOURCE_DATE_EPOCH:-1700000000}
stage=$out.stage
rm -rf "$stage" "$out.tmp"
mkdir -p "$stage"
cat >"$stage/README.txt" <<'TXT'
This is your persistent home on the vdi desktop: files here survive poweroff and reboot.
Everything outside /home lives in memory and starts afresh at every boot.
TXT
chmod 755 "$stage"
find "$stage" -exec touch -h -d "@$epoch" {} +

truncate -s "${size}M" "$out.tmp"
E2FSPROGS_FAKE_TIME=$epoch mkfs.ext4 -q -F -L vdi-home -m 0 \
	-U 6f7d6e2c-8a61-4c3e-9d2b-5644492d686d \
	-E root_owner=0:0,hash_seed=2f2a6a10-0b7e-4b6c-8a3c-766469686f6d,lazy_itable_init=0,nodiscard \
	-d "$stage" "$out.tmp"
# mkfs -d copies each file's owner and ctime, which an unprivileged touch cannot set:
# make them root's and the fixed time.
(cd "$stage" && find . -mindepth 1) | while read -r f; do
	echo "set_inode_field ${f#.} uid 0"
	echo "set_inode_field ${f#.} gid 0"
	echo "set_inode_field ${f#.} ctime @$epoch"
done | E2FSPROGS_FAKE_TIME=$epoch debugfs -w -f - "$out.tmp" >/dev/null 2>&1
rm -rf "$stage"
mv "$out.tmp" "$out"
echo "guest: wrote $out (${size} MiB ext4, $(du -k "$out" | cut -f1) KiB used on disk)"
