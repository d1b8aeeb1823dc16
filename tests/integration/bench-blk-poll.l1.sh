# l1-cpus: 2
# bench-blk's strict configuration as by default (poll=auto) against a fixed
# poll=2000, three rounds (scripts/bench-blk.sh --poll).
BENCH_SET=poll ROUNDS=3 . /scenarios/bench-blk.l1.sh
