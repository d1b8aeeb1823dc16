#!/usr/bin/env bash
# Passthrough benchmark in the nested runner: 16384 x 4 KiB O_DIRECT reads of
# L1's NVMe passed through to L2, ours without / with the virtio-iommu
# (strict: as by default, i.e. polled with poll=auto; on kicks, poll=off;
# with a fixed poll=2000; on port-write kicks, --virtio-notify pio), and
# QEMU the same two ways (two rounds each). Prints the BENCH lines, the virtio-iommu/iommufd counters
# and median host call latencies, then the best-of-rounds ratios.
# --none: only the two no-vIOMMU configurations, eight rounds in one L1
# run, which goes first alternating (scenario bench-pt-none); prints each
# round's ratio, the ratio of the medians, and the geometric mean of the
# ratios with its 95 % interval (whether the rounds show ours ahead,
# behind, or within the spread).
# --pair: what one guest MAP+UNMAP pair costs, request by request, as the
# guest's virtio-iommu driver waits for it (kprobes in L2, strict mode,
# 2048 reads; scenario bench-pt-pair): ours as by default and on kicks
# against QEMU, four rounds; prints the medians of each round's medians
# and QEMU's over ours.
# --side: the no-vIOMMU pair side by side (scenario bench-pt-side): both
# guests at once in an L1 with two NVMe controllers, each VMM with its own
# controller and L1 CPU (slots and start order swapped every round), both
# reading for the same 10 s, twelve rounds; prints each round's ratio of
# reads per second and their geometric mean with its 95 % interval. MODE
# says how the two treat an idle vCPU: default (both as they come: the
# guest's HLT exits), dedicated (each vCPU owns its CPU, both told so:
# ours --cpus 1,dedicated=on, QEMU -overcommit cpu-pm=on) or ours-dedicated
# (ours told so, QEMU as it comes).
#   scripts/bench-passthrough.sh [--none | --pair | --side [MODE]] [--keep-log FILE]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
log=$(mktemp /tmp/bench-passthrough.XXXXXX)
scenario=bench-passthrough
[ "${1:-}" = --none ] && { scenario=bench-pt-none; shift; }
[ "${1:-}" = --pair ] && { scenario=bench-pt-pair; shift; }
side_mode=default
if [ "${1:-}" = --side ]; then
	scenario=bench-pt-side
	shift
	case "${1:-}" in
	default | dedicated | ours-dedicated) side_mode=$1; shift ;;
	"" | --keep-log) ;;
	*) echo "bench-passthrough: --side: '$1' is not default, dedicated or ours-dedicated" >&2; exit 2 ;;
	esac
fi
[ "${1:-}" = --keep-log ] && log=$2
RUNNER_L1_EXTRA="${RUNNER_L1_EXTRA:-} side_mode=$side_mode" \
	"$top/scripts/run-nested.sh" $scenario --with-qemu --timeout 3000 --keep-log "$log" \
	>/dev/null || true
if [ $scenario = bench-pt-pair ]; then
	tr -d '\r' <"$log" | grep -E '^PAIR:|IOAS_MAP [0-9]+ ns|requestq kicks' || true
	tr -d '\r' <"$log" | awk '
	function median(s,   a, n, i, j, t) {
		n = split(s, a, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	/^PAIR: [a-z-]+ map median/ {
		c = $2; n[c]++; map[c] = map[c] " " $5; unmap[c] = unmap[c] " " $11; pair[c] = pair[c] " " $17
	}
	END {
		if (!n["qemu-strict"] || !n["ours-strict-default"]) { print "bench-passthrough --pair: a configuration has no figure"; exit 1 }
		q = median(pair["qemu-strict"])
		for (c in n) printf "%s, %d rounds, medians (us): MAP %.0f, UNMAP %.0f, MAP+UNMAP pair %.0f\n", c, n[c], median(map[c]), median(unmap[c]), median(pair[c])
		printf "guest MAP+UNMAP pair, QEMU / ours: as by default %.1fx, on kicks %s\n", q / median(pair["ours-strict-default"]),
			n["ours-strict-kicks"] ? sprintf("%.2fx", q / median(pair["ours-strict-kicks"])) : "n/a"
	}'
	exit 0
fi
# gmean(r, n): the geometric mean of the n ratios r[1..n] (ours over QEMU
# in throughput) and its 95 % interval (Student t on the logs): above 1.0
# shows ours ahead, below it behind, across it parity within the spread.
gmean_awk='
function gmean(r, n,   i, l, m, v, t, k, tt, lo, hi) {
	for (i = 1; i <= n; i++) { l[i] = log(r[i]); m += l[i] / n }
	for (i = 1; i <= n; i++) v += (l[i] - m) ^ 2 / (n > 1 ? n - 1 : 1)
	split("12.71 4.30 3.18 2.78 2.57 2.45 2.36 2.31 2.26 2.23 2.20 2.18 2.16 2.14 2.13", t, " ")
	k = n > 1 ? n - 1 : 1
	tt = (k <= 15) ? t[k] : 2.0
	lo = exp(m - tt * sqrt(v / n)); hi = exp(m + tt * sqrt(v / n))
	printf "geometric mean of the ratios %.3fx, 95%% interval %.3f-%.3fx: %s\n", exp(m), lo, hi,
		(n < 2) ? "one round, no interval" : (lo >= 1) ? "ours ahead" : (hi < 1) ? "ours behind" : "parity within the spread"
}'
if [ $scenario = bench-pt-side ]; then
	tr -d '\r' <"$log" | grep -E '^SIDE:' || true
	tr -d '\r' <"$log" | awk -v mode="$side_mode" '
	/^SIDE: round [0-9]+ slot [01] ours [0-9]+ [0-9.]+ qemu [0-9]+ [0-9.]+$/ && $8 > 0 && $11 > 0 {
		n++; ro = $7 / $8; rq = $10 / $11; r[n] = ro / rq
		so[$5] += ro / rq; sn[$5]++
		printf "round %d (ours in slot %d): ours %.0f reads/s, QEMU %.0f reads/s, ours / QEMU %.3fx\n", n, $5, ro, rq, r[n]
	}
	END {
		if (!n) { print "bench-passthrough --side: no round gave both figures"; exit 1 }
		printf "no vIOMMU, side by side, idle vCPUs: %s, %d rounds (target >= 1.0)\n", mode, n
		for (s = 0; s <= 1; s++) if (sn[s]) printf "mean ratio with ours in slot %d: %.3fx (%d rounds)\n", s, so[s] / sn[s], sn[s]
		gmean(r, n)
	}'"$gmean_awk"
	exit 0
fi
if [ $scenario = bench-pt-none ]; then
	grep -E 'BENCH:' "$log" | tr -d '\r'
	figs() { tr -d '\r' <"$log" | sed -n "s/^BENCH: $1 \([0-9.]*\)$/\1/p"; }
	paste <(figs ours-no-viommu) <(figs qemu-no-viommu) | awk '
	function median(a, n,   i, j, t) {
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	$1 > 0 && $2 > 0 { n++; o[n] = $1; q[n] = $2; r[n] = $2 / $1
		printf "round %d: ours %s s, QEMU %s s, throughput ours / QEMU %.2fx\n", n, $1, $2, $2 / $1 }
	END {
		if (!n) { print "bench-passthrough --none: no round gave both figures"; exit 1 }
		mo = median(o, n); mq = median(q, n)
		printf "no vIOMMU, %d rounds: median ours %.2f s, QEMU %.2f s; ratio of medians %.2fx, median of ratios %.2fx (target >= 1.0)\n",
			n, mo, mq, mq / mo, median(r, n)
		gmean(r, n)
	}'"$gmean_awk"
	exit 0
fi
grep -E 'BENCH:|virtio-iommu' "$log" | tr -d '\r'
best() { tr -d '\r' <"$log" | sed -n "s/^BENCH: $1 \([0-9.]*\)$/\1/p" | sort -n | head -1; }
on=$(best ours-no-viommu) os=$(best ours-viommu-strict) op=$(best ours-viommu-strict-poll) opp=$(best ours-viommu-strict-pio)
oa=$(best ours-viommu-strict-auto)
qn=$(best qemu-no-viommu) qs=$(best qemu-viommu-strict)
[ -n "$on" ] && [ -n "$os" ] && [ -n "$op" ] && [ -n "$oa" ] && [ -n "$qn" ] && [ -n "$qs" ] ||
	echo "bench-passthrough: a configuration has no figure (log: $log)"
awk -v on="$on" -v os="$os" -v op="$op" -v opp="$opp" -v oa="$oa" -v qn="$qn" -v qs="$qs" '
function q(a, b) { return (a > 0 && b > 0) ? sprintf("%.2fx", a / b) : "n/a" }
function pair(t) { return (t > 0 && on > 0) ? sprintf("%.0f us", (t - on) / 16384 * 1e6) : "n/a" }
BEGIN {
	printf "best of rounds (s): ours none %s, strict (default) %s, on kicks %s, poll=2000 %s, pio kicks %s; QEMU none %s, strict %s\n", on, oa, os, op, opp, qn, qs
	printf "no vIOMMU throughput, ours / QEMU: %s (target >= 1.0)\n", q(qn, on)
	printf "strict throughput, ours / QEMU: default %s; on kicks %s, poll=2000 %s, pio kicks %s (target >= 1.5)\n", q(qs, oa), q(qs, os), q(qs, op), q(qs, opp)
	printf "MAP+UNMAP pair per read, (strict - none) / 16384: default %s; on kicks %s, poll=2000 %s, pio kicks %s\n", pair(oa), pair(os), pair(op), pair(opp)
}'
# Per round (both figures from the same minutes of the same L1).
nth() { tr -d '\r' <"$log" | sed -n "s/^BENCH: $1 \([0-9.]*\)$/\1/p" | sed -n "${2}p"; }
for round in 1 2; do
	awk -v qs="$(nth qemu-viommu-strict $round)" -v os="$(nth ours-viommu-strict $round)" \
		-v op="$(nth ours-viommu-strict-poll $round)" -v opp="$(nth ours-viommu-strict-pio $round)" \
		-v oa="$(nth ours-viommu-strict-auto $round)" \
		-v qn="$(nth qemu-no-viommu $round)" -v on="$(nth ours-no-viommu $round)" -v r="$round" '
	function q(a, b) { return (a > 0 && b > 0) ? sprintf("%.2fx", a / b) : "n/a" }
	BEGIN { printf "round %s, throughput ours / QEMU: none %s; strict: default %s, on kicks %s, poll=2000 %s, pio kicks %s\n",
		r, q(qn, on), q(qs, oa), q(qs, os), q(qs, op), q(qs, opp) }'
done
