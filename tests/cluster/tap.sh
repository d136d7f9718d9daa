# TAP output for the cluster scenarios (sourced): numbered ok / not ok lines, then the plan
# and a summary line; `tap_finish` fails when any check did.
n=0
failures=0
ok_() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); failures=$((failures + 1)); echo "not ok $n - $*"; }
check() { # check DESCRIPTION EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then ok_ "$1"; else not_ok "$1: expected '$2', got '$3'"; fi
}
tap_finish() { # tap_finish WHAT
    echo "1..$n"
    echo "$1: $((n - failures)) passed, $failures failed"
    [ "$failures" = 0 ]
}
