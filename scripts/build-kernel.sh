#!/usr/bin/env bash
# Build the L1/L2 kernel (bzImage, and vmlinux for the PVH entry) and the uAPI headers from Debian's
# linux-source-6.12 with kernel/config-6.12 and the series in kernel-patches/.
#
# Results are cached under $VMM_CACHE (default ~/.cache/lean-vmm) keyed by a
# hash of the source tarball's version, the config, the patches and the
# recipe version below; a changed input means a new key and a rebuild.
#
#   scripts/build-kernel.sh            build (or reuse) bzImage + headers
#   scripts/build-kernel.sh --headers  only the uAPI headers (fast)
#   scripts/build-kernel.sh --print    print the cache directory and exit
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cache=${VMM_CACHE:-$HOME/.cache/lean-vmm}
tarball=/usr/src/linux-source-6.12.tar.xz
mode=${1:-all}

if [ ! -f "$tarball" ]; then
	echo "build-kernel: $tarball missing; apt-get install linux-source-6.12" >&2
	exit 1
fi

# Bump when the way the kernel is built changes (not for comments).
recipe=2
srcver=$(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null || stat -c %s "$tarball")
key=$( {
	echo "$srcver"
	cat "$top/kernel/config-6.12"
	cat "$top"/kernel-patches/*.patch 2>/dev/null || true
	echo "recipe=$recipe"
} | sha256sum | cut -c1-16)
out=$cache/kernel-$key

# A developer may pin an already-built kernel directory (e.g. while a new
# patch series is in flight): VMM_KERNEL_DIR=~/.cache/lean-vmm/kernel-KEY.
if [ -n "${VMM_KERNEL_DIR:-}" ]; then
	out=$VMM_KERNEL_DIR
	[ "$mode" = --print ] || [ -f "$out/bzImage" ] || { echo "build-kernel: no bzImage in $out" >&2; exit 1; }
	echo "$out"
	exit 0
fi

if [ "$mode" = --print ]; then
	echo "$out"
	exit 0
fi

src=$out/src
prepare_source() {
	[ -f "$src/.prepared" ] && return 0
	rm -rf "$src"
	mkdir -p "$src"
	echo "build-kernel: unpacking $tarball"
	tar -xf "$tarball" -C "$src" --strip-components=1
	shopt -s nullglob
	for p in "$top"/kernel-patches/*.patch; do
		echo "build-kernel: applying $(basename "$p")"
		patch -d "$src" -p1 --forward --batch -s <"$p"
	done
	touch "$src/.prepared"
}

build_headers() {
	[ -f "$out/headers/.done" ] && return 0
	prepare_source
	# Installed aside and moved into place whole: an interrupted install
	# never leaves a headers/ that looks complete to make.
	rm -rf "$out/headers" "$out/headers.tmp"
	make -s -C "$src" ARCH=x86_64 INSTALL_HDR_PATH="$out/headers.tmp" headers_install
	touch "$out/headers.tmp/.done"
	mv "$out/headers.tmp" "$out/headers"
}

build_kernel() {
	[ -f "$out/bzImage" ] && [ -f "$out/vmlinux" ] && return 0
	if [ -f "$out/.building" ]; then
		# Killed half-way (a truncated object file can look up to date
		# to kbuild): start again from fresh source.
		echo "build-kernel: an earlier build of this key stopped half-way: from fresh source"
		rm -f "$src/.prepared"
	fi
	prepare_source
	touch "$out/.building"
	cp "$top/kernel/config-6.12" "$src/.config"
	make -s -C "$src" ARCH=x86_64 olddefconfig
	local jobs=$(($(nproc) + 1))
	echo "build-kernel: building bzImage with -j$jobs (about 9 minutes on 2 cores)"
	make -s -C "$src" ARCH=x86_64 -j"$jobs" bzImage
	cp "$src/arch/x86/boot/bzImage" "$out/bzImage.tmp"
	cp "$src/.config" "$out/config"
	# The same kernel as an ELF for the PVH entry (no decompressor); the
	# symbols are not needed to boot it.
	objcopy --strip-all "$src/vmlinux" "$out/vmlinux"
	mv "$out/bzImage.tmp" "$out/bzImage"
	rm -f "$out/.building"
	# Older keys (a new linux-source security release, a changed config or
	# patch) are not used again: 2+ GB each.
	for d in "$cache"/kernel-*; do
		[ -d "$d" ] && [ ! -L "$d" ] && [ "$d" != "$out" ] && rm -rf "$d"
	done
	return 0
}

mkdir -p "$out"
build_headers
[ "$mode" = --headers ] || build_kernel
# A stable name for the newest build, used by the other scripts.
ln -sfn "$out" "$cache/kernel-current"
echo "$out"
