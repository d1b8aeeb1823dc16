# mkrom.sh OUT KIB TEXT: write OUT, a PCI expansion ROM of KIB KiB (2-127)
# for the runner's NVMe (QEMU's 1b36:0010, class 010802): one image whose
# code type is EFI, so no BIOS runs it (SeaBIOS executes x86 images only),
# headers valid for Linux to read it (0x55AA, a "PCIR" structure giving the
# image's length, last image), then TEXT repeated. scripts/run-nested.sh
# gives L1's NVMe one; the passthrough scenario makes another for romfile=.
out=$1 kib=$2 text=$3
b() { for v; do printf "\\$(printf %03o "$v")"; done; }
{
	b 85 170 $((kib * 2))			# signature; size in 512-byte units
	head -c 21 /dev/zero			# up to 0x18
	b 28 0 0 0				# the PCIR structure is at 0x1c
	printf PCIR
	# vendor, device, no device list, structure length 24, revision 0,
	# class 01 08 02, image length, code revision, type 3 (EFI), last
	# image, max runtime size.
	b 54 27 16 0 0 0 24 0 0 2 8 1 $((kib * 2)) 0 0 0 3 128 0 0
	yes "$text" | head -c $((kib * 1024 - 28 - 24))
} >"$out"
