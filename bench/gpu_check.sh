#!/usr/bin/env bash
# GPU check: the CUDA, AMP, channels-last and 2-process NCCL paths of both trainings,
# sampling and editing, in a few minutes on one machine (budget: 8 minutes).
#
#   bash bench/gpu_check.sh [WORKDIR]        (default: $OUT/gpu_check, else /tmp/gpu_check)
#
# Steps (each one line in WORKDIR/gpu_check.jsonl, its output in WORKDIR/<step>.log):
#   env        nvidia-smi and torch's view of the GPUs
#   run        `photoedit run tests/configs/tiny.yaml --device cuda`: GAN training (AMP: bf16
#              or fp16 + loss scaling), sampling, scoring, boundaries, pairs, translator
#              training (fp16 AMP), evaluation, editing (fp16 autocast, channels-last)
#   gan_amp    `photoedit train-gan --config quickstart --device cuda` for 1 minute: AMP at the
#              quickstart's real size (64x64, batch 8), NaN guard included
#   numerics   bench/gpu_check.py: CUDA vs CPU on the same weights (generator fp32 and AMP,
#              translator fp32 channels-last, EditPipeline fp16 on a real photo, ONNX CUDA EP)
#   edit       `photoedit -a night --device cuda` on the shared real photos (odd formats included)
#   ddp_gan, ddp_translator, ddp_edit
#              the same under `torchrun --nproc_per_node 2` (NCCL, one GPU per rank,
#              `--shard auto` for editing); skipped with a note on a 1-GPU machine: NCCL
#              refuses two ranks on one GPU
# Exit status 0 when every step passed (or was skipped for a stated reason).
# GPU_CHECK_SKIP="step step ..." leaves those steps out (bench/gpu_session.sh trains the GAN beside).
# GPU_CHECK_DEVICE=cpu runs the same steps on the CPU, the 2-process ones over gloo (checks
# the script itself; ~4-6 minutes on a 2-core machine).
set -u
cd "$(dirname "$0")/.."
W="${1:-${OUT:-/tmp}/gpu_check}"
mkdir -p "$W"
RESULTS="$W/gpu_check.jsonl"
: > "$RESULTS"
T_START=$(date +%s)
FAILED=0
PY=${PYTHON:-python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}

record() {  # name ok seconds note
    printf '{"check": "%s", "ok": %s, "seconds": %s, "note": "%s"}\n' "$1" "$2" "$3" "$4" >> "$RESULTS"
    printf '%-15s %-5s %6ss  %s\n' "$1" "$([ "$2" = true ] && echo PASS || echo FAIL)" "$3" "$4"
}

step() {  # name limit_s command...: run, time, record pass/fail with the log's last line
    local name=$1 limit=$2; shift 2
    case " ${GPU_CHECK_SKIP:-} " in *" $name "*) skip "$name" "GPU_CHECK_SKIP"; return;; esac
    local t0 t1 ok=true
    t0=$(date +%s%N)
    timeout "$limit" "$@" > "$W/$name.log" 2>&1 || ok=false
    t1=$(date +%s%N)
    [ "$ok" = true ] || FAILED=1
    local last
    last=$(grep -v '^\s*$' "$W/$name.log" | tail -n 1 | tr -d '"\\' | cut -c1-160)
    record "$name" "$ok" "$(awk "BEGIN { printf \"%.1f\", ($t1 - $t0) / 1e9 }")" "$last"
}

skip() { record "$1" true 0 "skipped: $2"; }

DEV=${GPU_CHECK_DEVICE:-cuda}
GPUS=$($PY -c "import torch; print(torch.cuda.device_count())" 2>/dev/null || echo 0)
step env 60 bash -c "{ nvidia-smi -L || [ $DEV = cpu ]; } && $PY -c 'import torch; print(torch.__version__, torch.version.cuda, torch.cuda.device_count(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)'"
if [ "$GPUS" -lt 1 ] && [ "$DEV" = cuda ]; then
    record gpu false 0 "no CUDA device visible to torch; nothing else can run"
    exit 1
fi

REAL=../shared/realphotos
[ -d "$REAL" ] || REAL="$W/run/edit"   # the run's own example photos when the shared ones are absent

step run 240 photoedit run tests/configs/tiny.yaml --out "$W/run" --device "$DEV"
step gan_amp 150 photoedit train-gan --config quickstart --device "$DEV" --out "$W/gan_amp" \
    --set train_gan.minutes=1 --set train_gan.data_images=512 --set train_gan.snapshot_ticks=1 \
    --set train_gan.swd_images=64
step numerics 120 $PY bench/gpu_check.py "$W/run" --device "$DEV" --out "$RESULTS"
step edit 90 photoedit -a night --models "$W/run/translator-night" "$REAL" -o "$W/edited" --device "$DEV" --no-progress

if [ "$GPUS" -ge 2 ] || [ "$DEV" = cpu ]; then  # on the CPU: the same commands over gloo
    TR="$PY -m torch.distributed.run --standalone --nproc_per_node 2 -m pipeline"
    step ddp_gan 120 $TR train-gan --config tests/configs/tiny.yaml --out "$W/ddp_gan"
    step ddp_translator 120 $TR train-translator --config tests/configs/tiny.yaml \
        --gan "$W/run/gan/generator.safetensors" --boundary "$W/run/boundary-night/night.npz" \
        --out "$W/ddp_translator/night" --quiet
    step ddp_edit 90 $TR -a night --models "$W/run/translator-night" "$REAL" -o "$W/ddp_edited" --shard auto --no-progress
else
    for s in ddp_gan ddp_translator ddp_edit; do
        skip "$s" "$GPUS GPU(s): 2-process NCCL needs 2 GPUs (NCCL refuses two ranks on one GPU)"
    done
fi

echo "total $(( $(date +%s) - T_START )) s; results in $RESULTS"
exit $FAILED
