#!/usr/bin/env bash
# The GPU target of `edgeasr bench` (budget target triton-gpu), in one prepared script.
#
# Where: a machine with a CUDA GPU, docker and the NVIDIA container toolkit, and this checkout with
# the shipped model in triton_models/ (Dockerfile.gpu's image serves it with `edgeasr serve`).
# What: builds Dockerfile.gpu's image, starts it, runs the whole suite (device fp32/int8, bundled
# Triton CPU with batching on/off, and the GPU server as triton-gpu) and writes the results to
# bench/results/gpu-<card name>/ for committing. Nothing here runs on a machine without a GPU.
#
#   bench/gpu.sh                                   # samples/manifest.jsonl
#   MANIFEST="test=work/corpus/test.jsonl" bench/gpu.sh
#   MODEL=edgeasr_trt bench/gpu.sh                 # a TensorRT plan published in this image's TensorRT
#                                                  # (decoded with the champion's beam search)
set -euo pipefail
cd "$(dirname "$0")/.."

MANIFEST=${MANIFEST:-samples/manifest.jsonl}
MODEL=${MODEL:-edgeasr}
LEVELS=${LEVELS:-1,2,4,8,16,32}
RATE=${RATE:-50}
PORT=${PORT:-18001}

card=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n1)
slug=$(printf '%s' "$card" | tr '[:upper:] ' '[:lower:]-' | tr -cd 'a-z0-9-')
out=bench/results/gpu-${slug}
echo "GPU: $card -> $out"

image=edgeasr-triton-gpu-bench
docker build -f Dockerfile.gpu -t "$image" .
serve=()  # the image's own command, plus the native flavour when one is asked for
if [ "$MODEL" != edgeasr ]; then
  serve=(edgeasr serve --model-repository=/models --bind=0.0.0.0 --grpc-port=8001 --http-port=8000
         --metrics-port=8002 --tritonserver=/opt/tritonserver/bin/tritonserver
         --backend-directory=/opt/tritonserver/backends --models edgeasr "$MODEL")
fi
cid=$(docker run -d --rm --gpus all -p "127.0.0.1:${PORT}:8001" -p "127.0.0.1:$((PORT + 1)):8000" "$image" "${serve[@]}")
trap 'docker stop "$cid" >/dev/null' EXIT
for _ in $(seq 120); do
  curl -sf "http://127.0.0.1:$((PORT + 1))/v2/models/${MODEL}/ready" >/dev/null && break
  sleep 1
done

args=()
for m in $MANIFEST; do args+=(--manifest "$m"); done
set +e
edgeasr bench --suite "${args[@]}" --model-repository triton_models \
  --gpu-url "127.0.0.1:${PORT}" --gpu-model-name "$MODEL" \
  --concurrency "$LEVELS" --rate "$RATE" --budgets bench/budgets.toml --out "$out"
code=$?
set -e
nvidia-smi > "$out/nvidia-smi.txt"
echo "results in $out (exit $code: 1 = a budget missed, see report.txt)"
exit $code
