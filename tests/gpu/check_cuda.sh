#!/usr/bin/env bash
# GPU check of the encoder (not part of `make test`): on a machine with an NVIDIA GPU and the
# onnxruntime-gpu library, runs the EfficientNet-Lite0 encoder model with the CUDA execution
# provider and compares its codes and throughput with the CPU provider.
#
#   1. raw:  trainer/examples/encoder_bench.rs with --provider cuda, then cpu, same images;
#   2. SQL:  when PostgreSQL 15 with ics_hash installed is here, a private cluster encodes the
#            same images with ics_encode_batch under ics_hash.execution_provider = cuda and
#            cpu, shows the CUDA slot it holds, and prints ics_encoder_info() (which provider
#            each session runs on and why, device memory limit and arena statistics).
#
# Setup (GPU machine):
#   pip install onnxruntime-gpu==1.31.1        # the CUDA 13 build; brings libonnxruntime.so
#   pip install nvidia-cudnn-cu13 nvidia-cublas nvidia-cuda-runtime nvidia-curand nvidia-cuda-nvrtc nvidia-cufft
#   ORT_GPU_LIB=$(python3 -c 'import onnxruntime,os;print(os.path.dirname(onnxruntime.__file__))')/capi/libonnxruntime.so.1.31.1
# Usage:
#   ORT_GPU_LIB=... tests/gpu/check_cuda.sh [size=224] [images=256] [batch=32]
# ENCODER_BENCH=path/to/encoder_bench uses a prebuilt benchmark binary (no cargo needed);
# ICS_PG_BIN=path/to/bin uses another PostgreSQL 15 installation (e.g. one carried to the
# GPU machine, with ics_hash installed into it);
# the CUDA and cuDNN libraries of the pip packages are found through python3, or add their
# lib folders to LD_LIBRARY_PATH yourself. For the server: set
#   ics_hash.onnxruntime_library = '<ORT_GPU_LIB>'   (postgresql.conf, superuser)
# and start the postmaster with those lib folders in LD_LIBRARY_PATH; `auto` then uses CUDA.
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE=${1:-224}
N=${2:-256}
BATCH=${3:-32}
out=$(pwd)/target/gpu-check
mkdir -p "$out"

fail() { printf 'check_cuda: FAILED: %s\n' "$*" >&2; exit 1; }

if [ -z "${ORT_GPU_LIB:-}" ]; then
    ORT_GPU_LIB=$(python3 - <<'PY' 2>/dev/null || true
import glob, os, onnxruntime
print((glob.glob(os.path.join(os.path.dirname(onnxruntime.__file__), "capi", "libonnxruntime.so.*")) or [""])[0])
PY
)
fi
[ -f "${ORT_GPU_LIB:-}" ] || fail "set ORT_GPU_LIB to the libonnxruntime.so of onnxruntime-gpu"
[ -f "$(dirname "$ORT_GPU_LIB")/libonnxruntime_providers_cuda.so" ] ||
    fail "$ORT_GPU_LIB has no libonnxruntime_providers_cuda.so beside it: not the onnxruntime-gpu build"
# CUDA/cuDNN from the nvidia-* pip packages, if present.
nv=$(python3 -c 'import glob,os,nvidia; print(":".join(sorted({d for p in nvidia.__path__ for d in glob.glob(os.path.join(p, "**", "lib"), recursive=True)})))' 2>/dev/null || true)
export LD_LIBRARY_PATH="$(dirname "$ORT_GPU_LIB")${nv:+:$nv}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export ORT_DYLIB_PATH=$ORT_GPU_LIB
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

bench=${ENCODER_BENCH:-}
if [ -z "$bench" ]; then
    cargo build --release -q -p ics-train --example encoder_bench
    bench=target/release/examples/encoder_bench
fi

echo "== raw ONNX Runtime, $N images at $SIZE px, batch $BATCH"
gpu=$("$bench" --provider cuda --size "$SIZE" --images "$N" --batch "$BATCH" --threads 4 --out "$out" --codes "$out/cuda.txt" | tail -n 1)
echo "$gpu"
cpu=$("$bench" --provider cpu --size "$SIZE" --images "$N" --batch "$BATCH" --threads "$(nproc)" --out "$out" --codes "$out/cpu.txt" | tail -n 1)
echo "$cpu"
same=$(paste -d' ' "$out/cuda.txt" "$out/cpu.txt" | awk '$1 == $2' | wc -l)
bits=$(paste -d' ' "$out/cuda.txt" "$out/cpu.txt" | python3 -c '
import sys
print(sum(bin(int(a, 16) ^ int(b, 16)).count("1") for a, b in (l.split() for l in sys.stdin)))')
echo "codes: $same of $N identical on CUDA and CPU; $bits differing bits in all"
field() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k { print $2 }'; }
echo "img/s batch $BATCH (inference): cuda $(field "$gpu" infer_ips), cpu $(field "$cpu" infer_ips);" \
    "with decoding: cuda $(field "$gpu" pipeline_ips), cpu $(field "$cpu" pipeline_ips)"
[ "$same" -ge $((N * 95 / 100)) ] || fail "fewer than 95% of the codes agree"

pg_bin=${ICS_PG_BIN:-/usr/lib/postgresql/15/bin}
if [ -x "$pg_bin/pg_ctl" ] && [ -f "$("$pg_bin/pg_config" --sharedir)/extension/ics_hash.control" ]; then
    echo "== SQL: ics_encode_batch with execution_provider cuda and cpu"
    source scripts/common.sh
    PORT=${ICS_GPU_PORT:-28853}
    chmod -R a+rX "$out" "$(dirname "$ORT_GPU_LIB")"
    cluster_stop gpu-check
    cluster_start gpu-check "$PORT" "ics_hash.onnxruntime_library = '$ORT_GPU_LIB'"
    psql_at "$PORT" -d postgres -c "DROP DATABASE IF EXISTS ics_gpu" -c "CREATE DATABASE ics_gpu"
    psql_at "$PORT" -d ics_gpu <<SQL
CREATE EXTENSION ics_hash;
SELECT name, bits FROM ics_model_load('lite0', pg_read_binary_file('$out/lite0_$SIZE.onnx'));
CREATE TABLE imgs AS SELECT i AS id, pg_read_binary_file(format('%s/images/img_%s.jpg', '$out', lpad(i::text, 3, '0'))) AS img
  FROM generate_series(0, $N - 1) i;
SET ics_hash.batch_size = $BATCH;
SET ics_hash.intra_op_threads = 4;
\timing on
SET ics_hash.execution_provider = cuda;
CREATE TABLE on_cuda AS SELECT ics_encode_batch(array_agg(img ORDER BY id), 'lite0') AS codes FROM imgs;
CREATE TABLE on_cuda2 AS SELECT ics_encode_batch(array_agg(img ORDER BY id), 'lite0') AS codes FROM imgs;
SET ics_hash.execution_provider = cpu;
CREATE TABLE on_cpu AS SELECT ics_encode_batch(array_agg(img ORDER BY id), 'lite0') AS codes FROM imgs;
\timing off
-- The CUDA session holds this backend's slot (ics_hash.max_cuda_sessions) until it is dropped.
SELECT slot, pid = pg_backend_pid() AS mine FROM ics_cuda_sessions;
SELECT count(*) FILTER (WHERE a = b) AS identical, sum(hamming(a, b)) AS differing_bits
  FROM unnest((SELECT codes FROM on_cuda), (SELECT codes FROM on_cpu)) u(a, b);
SELECT jsonb_pretty(ics_encoder_info());
SQL
    # ics_encode_batch on CUDA in a warm backend (best of three, decoding on the default
    # ics_hash.decode_threads, pipelined with the runs) against raw inference alone: the target
    # is at least half, decoding included.
    q="SELECT cardinality(ics_encode_batch(array_agg(img ORDER BY id), 'lite0')) FROM imgs"
    ms=$(psql_at "$PORT" -d ics_gpu -c "SET ics_hash.batch_size = $BATCH" -c "SET ics_hash.execution_provider = cuda" \
        -c "$q" -c '\timing on' -c "$q" -c "$q" -c "$q" |
        awk '/^Time:/ { t = $2; if (best == "" || t < best) best = t } END { print best }')
    threads=$(psql_at "$PORT" -d ics_gpu -tA -c "SELECT ics_encoder_info() ->> 'decode_threads'")
    awk -v n="$N" -v ms="$ms" -v raw="$(field "$gpu" infer_ips)" -v t="$threads" 'BEGIN {
        ips = n / (ms / 1000)
        printf "ics_encode_batch on CUDA: %.0f img/s with %s decoding threads, %.0f%% of raw inference (%s img/s; target: 50%%)\n", ips, t, 100 * ips / raw, raw }'
    cluster_stop gpu-check
else
    echo "== SQL part skipped: no PostgreSQL 15 with ics_hash installed here"
fi
echo "check_cuda: ok"
