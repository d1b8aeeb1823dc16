#!/usr/bin/env bash
# Build the busybox initramfs images of the nested runner:
#   build/images/l2.cpio   the guest our VMM (or QEMU, for comparisons) boots
#                          inside L1: busybox, /init, the L2 scenario scripts
#   build/images/l1.cpio   the L1 VM: busybox, the project's static binaries
#                          (vmm, build/l1/*), the kernel and l2.cpio for L2,
#                          the scenario scripts, and with --with-qemu QEMU
#                          itself (with its libraries and firmware) as a peer.
# The images are cheap to rebuild (seconds); the kernel comes from
# scripts/build-kernel.sh.
#   scripts/build-images.sh [--with-qemu]
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/build/images
kdir=$("$top/scripts/build-kernel.sh" --print)
with_qemu=0
[ "${1:-}" = --with-qemu ] && with_qemu=1

bb=$(command -v busybox || true)
if [ -z "$bb" ] || ! file -L "$bb" 2>/dev/null | grep -q static; then
	bb=/bin/busybox
fi
[ -x "$bb" ] || { echo "build-images: busybox-static is not installed" >&2; exit 1; }
[ -f "$kdir/bzImage" ] || { echo "build-images: no kernel at $kdir; run scripts/build-kernel.sh" >&2; exit 1; }
[ -x "$top/build/bin/vmm-static" ] || { echo "build-images: build/bin/vmm-static missing; run make" >&2; exit 1; }

mkdir -p "$out"

# A root with busybox and the directories init needs.
new_root() {
	local r=$1
	rm -rf "$r"
	mkdir -p "$r"/{bin,sbin,dev,proc,sys,tmp,run,etc,scenarios,mnt,var}
	cp "$bb" "$r/bin/busybox"
	for app in sh mount; do ln -sf busybox "$r/bin/$app"; done
	cp "$top"/tests/integration/*.sh "$r/scenarios/"
}

make_cpio() {
	(cd "$1" && find . -print0 | cpio --null -o -H newc --quiet) >"$2.tmp"
	mv "$2.tmp" "$2"
}

# ---- L2 ----
r2=$out/root-l2
new_root "$r2"
install -m 0755 "$top/tests/integration/init-l2" "$r2/init"
make_cpio "$r2" "$out/l2.cpio"
# Tools some scenarios append to l2.cpio (cat l2.cpio l2-tools.cpio): kept
# out of the guest every boot measurement uses.
rt=$out/root-l2-tools
rm -rf "$rt"
mkdir -p "$rt/bin"
cp "$top/build/l1/exitcost" "$rt/bin/"
make_cpio "$rt" "$out/l2-tools.cpio"

# ---- L1 ----
r1=$out/root-l1
new_root "$r1"
install -m 0755 "$top/tests/integration/init-l1" "$r1/init"
mkdir -p "$r1/images"
cp "$kdir/bzImage" "$r1/images/bzImage"
# The same kernel uncompressed (ELF, for the VMM's direct vmlinux boot and
# QEMU's PVH boot), when the cached build has it.
[ -f "$kdir/vmlinux" ] && cp "$kdir/vmlinux" "$r1/images/vmlinux"
cp "$out/l2.cpio" "$r1/images/l2.cpio"
cp "$out/l2-tools.cpio" "$r1/images/l2-tools.cpio"
cp "$top/build/bin/vmm-static" "$r1/bin/vmm"
for b in "$top"/build/l1/*; do
	[ -x "$b" ] && cp "$b" "$r1/bin/"
done
if [ $with_qemu = 1 ]; then
	q=$(command -v qemu-system-x86_64)
	mkdir -p "$r1/qemu/lib" "$r1/qemu/share"
	cp "$q" "$r1/qemu/qemu-system-x86_64"
	# The dynamic loader and every library QEMU links, beside it.
	ldd "$q" | awk '/=> \//{print $3} /^\t\/lib/{print $1}' | while read -r lib; do
		cp -L "$lib" "$r1/qemu/lib/"
	done
	ld=$(ldd "$q" | awk '/ld-linux/{print $1}')
	cp -L "$ld" "$r1/qemu/lib/ld.so"
	for fw in bios-256k.bin bios.bin bios-microvm.bin qboot.rom linuxboot.bin linuxboot_dma.bin pvh.bin \
		kvmvapic.bin vgabios-stdvga.bin efi-virtio.rom efi-e1000.rom; do
		[ -e "/usr/share/qemu/$fw" ] && cp -L "/usr/share/qemu/$fw" "$r1/qemu/share/"
	done
	cp -L /usr/share/seabios/*.bin "$r1/qemu/share/" 2>/dev/null || true
	cat >"$r1/bin/qemu" <<-'EOF'
	#!/bin/sh
	exec /qemu/lib/ld.so --library-path /qemu/lib /qemu/qemu-system-x86_64 -L /qemu/share "$@"
	EOF
	chmod +x "$r1/bin/qemu"
	make_cpio "$r1" "$out/l1-qemu.cpio"
else
	make_cpio "$r1" "$out/l1.cpio"
fi
echo "build-images: $(ls -1 "$out"/*.cpio | tr '\n' ' ')"
