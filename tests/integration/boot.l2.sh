echo "L2-CPUS: $(grep -c ^processor /proc/cpuinfo)"
echo "L2-KERNEL: $(uname -r)"
echo "L2-TEXT: $(sed -n 's/^\([0-9a-f]*\) T _text$/\1/p' /proc/kallsyms)"
