echo "L2-CPUS: $(grep -c ^processor /proc/cpuinfo)"
echo "L2-KERNEL: $(uname -r)"
