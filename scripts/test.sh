#!/usr/bin/env bash
# The project's test command (the README's, and what .ci/run calls):
#   1. build (warnings are errors),
#   2. unit tests, plain and under ASan+UBSan,
#   3. a short libFuzzer smoke run of every fuzz target,
#   4. every integration scenario in the nested runner (L1 under TCG, L2
#      under our VMM with KVM inside L1).
# Prints one "N passed, N failed" line at the end; exits non-zero on failure.
#
#   scripts/test.sh [--unit-only] [SCENARIO...]
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
pass=0 fail=0
# CI gives the whole run 90 minutes, setup included: this script keeps to
# a budget of its own (VMM_TEST_BUDGET_S, default 70 minutes) so that a
# hang still ends in the tally line, the scenarios it had no time for
# counted as failed and named.
budget=${VMM_TEST_BUDGET_S:-4200}
t_start=$SECONDS
remaining() { echo $((budget - (SECONDS - t_start))); }
unit_only=0
scenarios=()
for a in "$@"; do
	case $a in
	--unit-only) unit_only=1 ;;
	*) scenarios+=("$a") ;;
	esac
done

tally() {	# tally LOGFILE: add the last "N passed, N failed" line of LOGFILE
	local line p f
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -1)
	if [ -z "$line" ]; then
		fail=$((fail + 1))
		return
	fi
	p=${line%% passed*}
	f=${line#*, }
	f=${f%% failed*}
	pass=$((pass + p)) fail=$((fail + f))
}

step() { echo; echo "==== $*"; }
logs=$(mktemp -d /tmp/vmm-test.XXXXXX)

step "build"
if ! make -s all tests 2>&1 | tee "$logs/build.log"; then
	echo "build failed"
	echo "0 passed, 1 failed"
	exit 1
fi

step "unit tests"
scripts/run-unit-tests.sh build/tests 2>&1 | tee "$logs/unit.log"
tally "$logs/unit.log"

step "unit tests under ASan+UBSan"
if make -s SAN=1 tests 2>&1 | tee "$logs/build-san.log"; then
	scripts/run-unit-tests.sh build-san/tests 2>&1 | tee "$logs/unit-san.log"
	tally "$logs/unit-san.log"
else
	fail=$((fail + 1))
fi

step "fuzz smoke runs (30 s each)"
if ls tests/fuzz/fuzz_*.c >/dev/null 2>&1; then
	if make -s fuzz 2>&1 | tee "$logs/fuzz-build.log"; then
		for f in build-fuzz/fuzz_*; do
			case $f in *.d) continue ;; esac
			mkdir -p "$logs/corpus-$(basename "$f")"
			# -timeout: an input that hangs is a failure, not the
			# end of CI; the outer timeout bounds the whole run.
			if timeout 120 "$f" -max_total_time=30 -timeout=10 -print_final_stats=0 \
				"$logs/corpus-$(basename "$f")" >"$logs/$(basename "$f").log" 2>&1; then
				echo "ok - fuzz $(basename "$f"): $(grep -Eo 'Done [0-9]+ runs' "$logs/$(basename "$f").log")"
				pass=$((pass + 1))
			else
				tail -30 "$logs/$(basename "$f").log"
				echo "not ok - fuzz $(basename "$f")"
				fail=$((fail + 1))
			fi
		done
	else
		fail=$((fail + 1))
	fi
fi

if [ $unit_only = 0 ]; then
	if [ ${#scenarios[@]} -eq 0 ]; then
		for s in tests/integration/*.l1.sh; do
			s=$(basename "$s" .l1.sh)
			# Benchmarks are run by scripts/bench-*.sh, not as tests.
			case $s in bench-*) continue ;; esac
			scenarios+=("$s")
		done
	fi
	step "building the runner's kernel (cached)"
	if ! scripts/build-kernel.sh >"$logs/kernel.log" 2>&1; then
		tail -30 "$logs/kernel.log"
		for s in "${scenarios[@]}"; do
			echo "not ok - $s: not run (the runner's kernel did not build)"
			fail=$((fail + 1))
		done
		scenarios=()
	fi
	for s in "${scenarios[@]}"; do
		step "integration: $s (nested runner)"
		left=$(remaining)
		if [ "$left" -lt 120 ]; then
			echo "not ok - $s: not run (out of the test run's time budget, ${budget} s)"
			fail=$((fail + 1))
			continue
		fi
		t=600
		[ $((left - 60)) -lt $t ] && t=$((left - 60))
		extra=()
		grep -q '^# needs: qemu' "tests/integration/$s.l1.sh" && extra=(--with-qemu)
		scripts/run-nested.sh "$s" --timeout "$t" "${extra[@]}" >"$logs/$s.log" 2>&1
		rc=$?
		grep -E '^(not )?ok( [0-9]+)? - |^[0-9]+ skipped|skipped$|# SKIP|XFAIL|known failure|L2\| .*(Kernel panic|BUG|Oops)|run-nested:|RETRY|^L1: WARNING' "$logs/$s.log"
		if grep -qE '^[0-9]+ passed, [0-9]+ failed' "$logs/$s.log"; then
			tally "$logs/$s.log"
			[ $rc -ne 0 ] && ! grep -qE '^[0-9]+ passed, [1-9]' "$logs/$s.log" && fail=$((fail + 1))
		else
			tail -40 "$logs/$s.log"
			fail=$((fail + 1))
		fi
	done
fi

echo
echo "logs in $logs"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
