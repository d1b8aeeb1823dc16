# needs: qemu
# l1-cpus: 2
# bench-blk with only the configurations its targets name, three rounds
# (scripts/bench-blk.sh --core).
BENCH_SET=core ROUNDS=3 . /scenarios/bench-blk.l1.sh
