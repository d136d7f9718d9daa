#!/usr/bin/env bash
# Encoder benchmark: images per second through the EfficientNet-Lite0-based model (Lite0
# imported from the PyTorch weights + a seeded random 1280-1024-64 hash head, exported by the
# trainer library) at 128 and 224 px, on JPEG photos of 320x240 to 640x480:
#
#   raw infer  ONNX Runtime in Rust on preprocessed tensors (trainer/examples/encoder_bench.rs)
#   raw pipe   the same in Rust with decoding: decode + preprocess (threads) + run, batch B
#   raw single decode + preprocess + run, one image at a time
#   sql row    SELECT count(ics_encode(img, m)) FROM imgs          (one run per row)
#   sql batch  SELECT ics_encode_batch(array_agg(img), m) FROM imgs (one run per B images)
#   first      the first ics_encode in a new backend: library, environment, session, run (ms)
#
# Same images, threads (ics_hash.intra_op_threads, and ics_hash.decode_threads for the SQL
# batch's decoding pipeline unless given apart) and batch size (ics_hash.batch_size) on both
# sides; each figure is the best of three passes. The SQL codes are checked against the raw
# ones. Usage: benches/sql/encoder.sh [images=128] [threads=2] [batch=32] [decode_threads=threads]
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/common.sh

N=${1:-128}
THREADS=${2:-2}
BATCH=${3:-32}
DECODE=${4:-$THREADS}
PORT=${ICS_BENCH_PORT:-28852}
out=$(pwd)/target/bench-encoder
mkdir -p "$out"

step "raw ONNX Runtime baseline (release build of trainer/examples/encoder_bench.rs)"
cargo build --release -q -p ics-train --example encoder_bench
# raw_run SIZE: one raw measurement line (also exports the model and images on first use).
raw_run() {
    target/release/examples/encoder_bench --size "$1" --images "$N" --batch "$BATCH" \
        --threads "$THREADS" --out "$out" --codes "$out/codes_$1.txt" | tail -n 1
}
declare -A raw
for size in 128 224; do
    raw[$size]=$(raw_run $size)
    info "${raw[$size]}"
done
chmod -R a+rX "$out"

step "cluster, models and $N images"
cluster_start bench-encoder "$PORT"
psql_at "$PORT" -d postgres -c "SET client_min_messages = warning" \
    -c "DROP DATABASE IF EXISTS ics_bench_enc" -c "CREATE DATABASE ics_bench_enc"
psql_at "$PORT" -d ics_bench_enc <<SQL
CREATE EXTENSION ics_hash;
SELECT name, bits, input_size FROM ics_model_load('lite0_128', pg_read_binary_file('$out/lite0_128.onnx'));
SELECT name, bits, input_size FROM ics_model_load('lite0_224', pg_read_binary_file('$out/lite0_224.onnx'));
CREATE TABLE imgs AS
SELECT i AS id, pg_read_binary_file(format('%s/images/img_%s.jpg', '$out', lpad(i::text, 3, '0'))) AS img
  FROM generate_series(0, $N - 1) i;
SQL

# best_ms SQL: the smallest "Time:" of three runs of SQL in one warm backend (a first,
# untimed run warms the session).
best_ms() {
    psql_at "$PORT" -d ics_bench_enc \
        -c "SET ics_hash.intra_op_threads = $THREADS" -c "SET ics_hash.batch_size = $BATCH" \
        -c "SET ics_hash.decode_threads = $DECODE" \
        -c "$1" -c '\timing on' -c "$1" -c "$1" -c "$1" |
        awk '/^Time:/ { t = $2; if (best == "" || t < best) best = t } END { print best }'
}

field() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k { print $2 }'; }
ips() { awk -v n="$N" -v ms="$1" 'BEGIN { printf "%.1f", n / (ms / 1000) }'; }

declare -A row batch first agree
for size in 128 224; do
    m=lite0_$size
    step "SQL at $size px"
    first[$size]=$(psql_at "$PORT" -d ics_bench_enc -c "SET ics_hash.intra_op_threads = $THREADS" \
        -c '\timing on' -c "SELECT ics_encode(img, '$m') IS NOT NULL FROM imgs WHERE id = 0" |
        awk '/^Time:/ { print $2 }')
    row[$size]=$(best_ms "SELECT count(ics_encode(img, '$m')) FROM imgs")
    batch[$size]=$(best_ms "SELECT cardinality(ics_encode_batch(array_agg(img ORDER BY id), '$m')) FROM imgs")
    agree[$size]=$(psql_at "$PORT" -d ics_bench_enc -tA -c "SET ics_hash.intra_op_threads = $THREADS" -c "
        SELECT count(*) FROM unnest((SELECT ics_encode_batch(array_agg(img ORDER BY id), '$m') FROM imgs))
               WITH ORDINALITY s(code, i)
          JOIN unnest(string_to_array(rtrim(pg_read_file('$out/codes_$size.txt'), E'\n'), E'\n'))
               WITH ORDINALITY r(hex, j) ON i = j
         WHERE code::text = hex" | tail -n 1)
    info "first call ${first[$size]} ms, row ${row[$size]} ms, batch ${batch[$size]} ms, codes equal to raw: ${agree[$size]}/$N"
    # The raw side again, right after: on a shared machine load drifts; each raw figure is
    # the better of its two measurements, as each SQL figure is the best of three.
    again=$(raw_run $size)
    info "$again"
    merged=""
    for kv in ${raw[$size]}; do
        k=${kv%%=*} v1=${kv#*=} v2=$(field "$again" "${kv%%=*}")
        case $k in
        *_ips) v1=$(awk -v a="$v1" -v b="$v2" 'BEGIN { print (b > a ? b : a) }') ;;
        *_ms) v1=$(awk -v a="$v1" -v b="$v2" 'BEGIN { print (b < a ? b : a) }') ;;
        esac
        merged="$merged $k=$v1"
    done
    raw[$size]=${merged# }
done

step "images per second ($N JPEGs, $THREADS threads, $DECODE decoding, batch $BATCH, $(nproc) cores)"
printf '%-5s %10s %10s %10s %10s %10s %10s %9s %9s %11s\n' size "raw infer" "raw pipe" "raw single" \
    "sql row" "sql batch" "batch/pipe" "row ovh" "first ms" "codes=raw"
for size in 128 224; do
    r=${raw[$size]}
    single_ms=$(field "$r" single_ms)
    row_ms_per=$(awk -v ms="${row[$size]}" -v n="$N" 'BEGIN { printf "%.3f", ms / n }')
    printf '%-5s %10s %10s %10s %10s %10s %9s%% %8sms %9s %11s\n' "$size" \
        "$(field "$r" infer_ips)" "$(field "$r" pipeline_ips)" "$(field "$r" single_ips)" \
        "$(ips "${row[$size]}")" "$(ips "${batch[$size]}")" \
        "$(awk -v b="$(ips "${batch[$size]}")" -v p="$(field "$r" pipeline_ips)" 'BEGIN { printf "%.0f", 100 * b / p }')" \
        "$(awk -v a="$row_ms_per" -v b="$single_ms" 'BEGIN { printf "%.2f", a - b }')" \
        "${first[$size]}" "${agree[$size]}/$N"
done
info "row ovh = SQL row-by-row ms per image minus raw single ms per image (same decode + run)"
