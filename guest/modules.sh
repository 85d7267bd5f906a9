# Sourced by guest/build-image.sh and kvmbox/build-box.sh: copies the kernel modules a
# list names, each with the dependencies modules.dep gives, into an initramfs staging
# tree and writes the order to load them in. Bash functions only; nothing runs on source.

# stage_modules MODDIR KVER LISTFILE STAGE: copies the modules LISTFILE names (one module
# name a line, # comments) from MODDIR into STAGE/lib/modules/KVER and writes their load
# order to STAGE/etc/modules-load. Sets the arrays `order` (module paths, in load order)
# and `builtins` (listed names the kernel has built in). Calls die() on an unknown name.
stage_modules() {
	local moddir=$1 kver=$2 list=$3 stage=$4 line mod name
	declare -A dep path loaded builtin
	while IFS= read -r line; do
		mod=${line%%:*}
		dep[$mod]=${line#*:}
		name=${mod##*/}
		name=${name%.ko}
		path[${name//-/_}]=$mod
	done <"$moddir/modules.dep"
	while IFS= read -r mod; do
		name=${mod##*/}
		name=${name%.ko}
		builtin[${name//-/_}]=1
	done <"$moddir/modules.builtin"
	order=()
	builtins=()
	add_module() {
		local d
		[ -n "${loaded[$1]:-}" ] && return
		loaded[$1]=1
		for d in ${dep[$1]}; do add_module "$d"; done
		order+=("$1")
	}
	while read -r name _; do
		case "$name" in '' | '#'*) continue ;; esac
		name=${name//-/_}
		if [ -n "${builtin[$name]:-}" ]; then
			builtins+=("$name")
		elif [ -n "${path[$name]:-}" ]; then
			add_module "${path[$name]}"
		else
			die "$list: $name is neither a module nor built into $kver"
		fi
	done <"$list"
	mkdir -p "$stage/etc"
	{
		echo "# Kernel modules /init loads, in this order (from $(basename "$list") and modules.dep)."
		for mod in "${order[@]}"; do
			mkdir -p "$stage/lib/modules/$kver/$(dirname "$mod")"
			install -m 644 "$moddir/$mod" "$stage/lib/modules/$kver/$mod"
			echo "$mod"
		done
	} >"$stage/etc/modules-load"
}
