#!/usr/bin/env bash
# Run every cmocka test binary in a directory; count test cases from cmocka's
# summary lines and print "N passed, N failed". Exit 1 if any failed or a
# binary crashed.
set -u
dir=${1:?usage: run-unit-tests.sh DIR}
pass=0 fail=0
for t in "$dir"/test_*; do
	[ -x "$t" ] || continue
	out=$(timeout 300 "$t" 2>&1)	# a hang is a failure, not the end of CI
	rc=$?
	p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | awk '{s+=$1} END {print s+0}')
	f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | awk '{s+=$1} END {print s+0}')
	if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1	# crashed or sanitizer abort: count the binary as a failure
	fi
	if [ $rc -ne 0 ]; then
		printf '%s\n' "$out" | grep -vE '^\[ +(RUN|OK) +\]' | tail -40
	fi
	[ $rc -eq 124 ] && echo "unit: $(basename "$t"): timed out after 300 s"
	# cmocka's skips (e.g. the tap test without CAP_NET_ADMIN), said.
	printf '%s\n' "$out" | grep -E '^\[  SKIPPED \]|^NOTE:' | sed "s/^/unit: $(basename "$t"): /"
	echo "unit: $(basename "$t"): $p passed, $f failed"
	pass=$((pass + p)) fail=$((fail + f))
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
