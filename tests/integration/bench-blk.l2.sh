# 1024 reads to warm up, then 16384 x 4 KiB O_DIRECT reads, timed.
dd if=/dev/vda of=/dev/null bs=4k count=1024 iflag=direct 2>/dev/null
t0=$(cut -d' ' -f1 /proc/uptime)
dd if=/dev/vda of=/dev/null bs=4k count=16384 iflag=direct 2>/dev/null
t1=$(cut -d' ' -f1 /proc/uptime)
echo "L2-DD-MS: $(echo "$t0 $t1" | awk '{printf "%d", ($2 - $1) * 1000}')"
