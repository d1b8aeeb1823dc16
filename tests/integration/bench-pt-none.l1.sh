# needs: qemu
# l1-cpus: 2
# bench-passthrough without the vIOMMU only: ours and QEMU, eight rounds,
# which goes first alternating (scripts/bench-passthrough.sh --none).
BENCH_SET=none ROUNDS=8 . /scenarios/bench-passthrough.l1.sh
