# Helpers the SQL benchmarks share; source after scripts/common.sh (die, $PG_BIN).

# ms_since T0: milliseconds since T0, a `date +%s%N` reading.
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

# latency PORT DB FILE COUNT [PGOPTIONS]: "median p95" in ms of COUNT runs of the pgbench
# script FILE over one connection with prepared statements, from pgbench's per-query log.
latency() {
    local port=$1 db=$2 file=$3 count=$4 opts=${5:-}
    local dir
    dir=$(mktemp -d)
    (cd "$dir" && PGOPTIONS="$opts" "$PG_BIN/pgbench" -h 127.0.0.1 -p "$port" -U postgres -n \
        -M prepared -c 1 -t "$count" -l -f "$file" "$db" >/dev/null 2>"$dir/err") ||
        die "pgbench failed: $(cat "$dir/err")"
    cat "$dir"/pgbench_log.* | awk '{ print $3 / 1000 }' | sort -n |
        awk '{ v[NR] = $1 } END { printf "%.3f %.3f\n", v[int((NR + 1) / 2)], v[int(NR * 0.95 + 0.999)] }'
    rm -rf "$dir"
}
