#!/usr/bin/env bash
# One GPU lease, prepared: the demo preset's GAN trained on the GPU (issue #12: "train this
# preset's GAN on it in under 10 minutes") while bench/gpu_check.sh runs the CUDA / AMP /
# channels-last checks beside it on the same GPU. Made for the device tool's machines (bare,
# no network: packages they lack travel as wheels in .whl/, photoedit runs from the checkout).
#
#   bash bench/gpu_session.sh          # results in $OUT (at most 8 files come back)
#
# Environment: GPU_SESSION_CHECKS=0 trains the GANs alone; GPU_DEMO_VARIANTS ("c c16") which GANs;
# GPU_DEMO_MINUTES (7.2) training wall time; GPU_DEMO_IMAGES (32768) world renders held in memory
# (rendered by every core first: ~20 s for one run on 16 cores, ~100 s for two); GPU_CHECK_DEVICE=cpu runs everything on the
# CPU (checks the script itself; then use small minutes/images).
# Back in $OUT: gan_<variant>.tar.gz per variant (config.yaml, stats.jsonl, the last sample grid, the
# last checkpoint whole - `train-gan --resume` continues it exactly - and best/, the EMA generator at
# the lowest SWD of the run), in 15 MB parts if larger (cat gan_X.tar.gz.part* | tar -xz);
# gpu_check.jsonl; logs.tar.gz.
# The GANs are the demo preset's own (128x256, 0.38 M parameters, its learning rates, R1, EMA), in
# fp32, with train_gan.compile (torch.compile'd G and D passes: an eager step on an H200 is bound by
# kernel launches, ~100-180 ms whatever the width) and 16x the images (the world is free to render):
#   c    the preset's batch 8: the CPU GAN's recipe with more steps
#   c16  batch 16, R1 gamma for that batch (0.0002 * 128 * 256 / 16)
#   b    the second lease's wider GAN (channel_base 4096, max 128, batch 32), compiled
# GPU_DEMO_RESUME=ARCHIVE (a gan_<variant>.tar.gz an earlier lease brought back, carried in the tree
# under a git-ignored path): that variant continues its run for GPU_DEMO_MINUTES more (train-gan --resume).
# A variant whose compiled run fails trains eagerly for the time left. GPU_DEMO_COMPILE_MODE=reduce-overhead
# adds CUDA graphs (the compiled step was still host-bound in the third lease: ~10 ms of GPU work in
# ~43 ms; time it first: python bench/bench_gan_step.py --device cuda --batch 8 --width 1024
# --channel-max 64 --variants 2,4).
# History: first lease (27 Nov, eager, batch 64, 1.1 M parameters) SWD 105; second (28 Nov, eager,
# batch 32, two widths side by side, ~5.5 steps/s each) 104 and 85, against the CPU GAN's 49.0.
set -u
cd "$(dirname "$0")/.."
T0=$(date +%s)
OUT=${OUT:-/tmp/gpu_session_out}
W=${GPU_SESSION_DIR:-/tmp/gpu_session}
mkdir -p "$OUT" "$W"
MIN=${GPU_DEMO_MINUTES:-7.2}  # fits one 600-s device call: ~60 s of renders and start, ~30 s to pack
IMAGES=${GPU_DEMO_IMAGES:-32768}
DEV=${GPU_CHECK_DEVICE:-cuda}
export PYTHONUNBUFFERED=1

# packages the machine lacks, carried as wheels; photoedit from this checkout when not installed
if ls .whl/*.whl > /dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
if ! command -v photoedit > /dev/null; then
    mkdir -p /tmp/bin
    printf '#!/bin/sh\nexec python3 -m pipeline "$@"\n' > /tmp/bin/photoedit
    chmod +x /tmp/bin/photoedit
    export PATH=/tmp/bin:$PATH
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}  # this checkout's code, installed or not
export PYTHON=${PYTHON:-python3}
command -v nvidia-smi > /dev/null && { nvidia-smi --query-gpu=utilization.gpu,memory.used,power.draw --format=csv -l 5 > "$W/smi.csv" 2>&1 & }

GPU_DEMO_SET=(--set train_gan.amp=false --set train_gan.compile=true --set train_gan.compile_mode="${GPU_DEMO_COMPILE_MODE:-default}"
    --set train_gan.data_images="$IMAGES" --set train_gan.swd_images=256
    --set train_gan.tick_kimg=8 --set train_gan.snapshot_ticks=4)

train_gan() {  # NAME SECONDS MINUTES [args...]: one train-gan of variant NAME, its output in NAME.log
    local name=$1 limit=$2 minutes=$3; shift 3
    timeout "$limit" photoedit train-gan --config demo --data world --out "$W/$name" --device "$DEV" \
        "${GPU_DEMO_SET[@]}" "$@" --set train_gan.minutes="$(until_min "$name" "$minutes")" >> "$W/$name.log" 2>&1
}

demo_gan() {  # NAME [--set ...]: compiled first; if that run fails, eager for the time left
    local name=$1 left resume=(); shift
    [ -f "$W/$name/checkpoints/latest/state.json" ] && resume=(--resume)  # GPU_DEMO_RESUME unpacked it
    echo "demo GAN $name: ${MIN} min, ${IMAGES} images, device $DEV, ${resume[*]:-new run}, extra: $*" > "$W/$name.log"
    if train_gan "$name" "$(awk "BEGIN { print int($MIN * 60 + 150) }")" "$MIN" ${resume[@]+"${resume[@]}"} "$@"; then
        echo ok > "$W/$name.status"
        return
    fi
    left=$(( 520 - ($(date +%s) - T0) ))
    echo "compiled run failed; eager for the $left s left" >> "$W/$name.log"
    if [ "$left" -gt 120 ]; then
        [ ${#resume[@]} = 0 ] && rm -rf "$W/$name"
        train_gan "$name" "$left" "$(awk "BEGIN { print ($left - 90) / 60 }")" ${resume[@]+"${resume[@]}"} "$@" \
            --set train_gan.compile=false --set train_gan.compile_mode=default && echo "ok eager" > "$W/$name.status" && return
    fi
    echo failed > "$W/$name.status"
}

until_min() {  # NAME MINUTES: train-gan's minutes (a total over sessions) for MINUTES more of this run
    local state="$W/$1/checkpoints/latest/state.json"
    if [ -f "$state" ]; then
        "$PYTHON" -c "import json, sys; print(json.load(open(sys.argv[1]))['seconds'] / 60 + float(sys.argv[2]))" "$state" "$2"
    else
        echo "$2"
    fi
}

if [ -n "${GPU_DEMO_RESUME:-}" ]; then  # gan_<variant>.tar.gz of an earlier lease: that variant goes on
    rv=$(basename "$GPU_DEMO_RESUME"); rv=${rv%.tar.gz}
    mkdir -p "$W/$rv" && tar -xzf "$GPU_DEMO_RESUME" -C "$W/$rv" && echo "resuming $rv from $GPU_DEMO_RESUME"
fi

PIDS=()
for v in ${GPU_DEMO_VARIANTS:-c c16}; do
    case $v in
        c) demo_gan gan_c & ;;
        c16) demo_gan gan_c16 --set train_gan.batch=16 --set train_gan.r1_gamma=0.4 & ;;
        b) demo_gan gan_b --set gan.channel_base=4096 --set gan.channel_max=128 --set train_gan.d_channel_base=4096 \
               --set train_gan.d_channel_max=128 --set train_gan.batch=32 --set train_gan.g_lr=0.0025 \
               --set train_gan.d_lr=0.0025 --set train_gan.r1_gamma=0.2 --set train_gan.ema_kimg=10 & ;;
        *) echo "unknown variant $v"; continue ;;
    esac
    PIDS+=($!)
done
if [ "${GPU_SESSION_CHECKS:-1}" = 1 ]; then
    sleep 60  # the GANs' renders first: they take every core for a while
    OMP_NUM_THREADS=4 GPU_CHECK_SKIP=${GPU_CHECK_SKIP:-gan_amp} bash bench/gpu_check.sh "$W/gpu_check" > "$W/gpu_check.log" 2>&1
    echo "gpu_check exit $?"
    cat "$W/gpu_check.log"
fi
wait "${PIDS[@]}"

# per variant one archive: the run's config, stats, last sample grid, last checkpoint (with the archive,
# `train-gan --resume` continues it exactly) and best/; in 15 MB parts when larger (the device tool
# returns at most 8 files of 16 MiB, 64 MiB in all)
for v in ${GPU_DEMO_VARIANTS:-c c16}; do
    R=$W/gan_$v
    echo "gan_$v: $(cat "$W/gan_$v.status" 2>/dev/null)"; tail -n 3 "$W/gan_$v.log"
    [ -d "$R/checkpoints/latest" ] || continue
    last_grid=$(cd "$R" && ls fakes_*.png 2>/dev/null | sort | tail -n 1)
    tail -n 2 "$R/stats.jsonl" 2>/dev/null
    (cd "$R" && tar -czhf "$OUT/gan_$v.tar.gz" config.yaml stats.jsonl $last_grid checkpoints/latest \
        $(ls best/generator_ema.safetensors 2>/dev/null))
    if [ "$(stat -c %s "$OUT/gan_$v.tar.gz")" -gt 15000000 ]; then
        split -b 15000000 -d "$OUT/gan_$v.tar.gz" "$OUT/gan_$v.tar.gz.part" && rm "$OUT/gan_$v.tar.gz"
    fi
done
cp "$W/gpu_check/gpu_check.jsonl" "$OUT/" 2>/dev/null
tar -czf "$OUT/logs.tar.gz" -C "$W" --exclude='*.safetensors' --exclude='*.pt' --exclude='*.npy' \
    --exclude='checkpoints' --exclude='run' --exclude='edited' --exclude='ddp_*' \
    $(cd "$W" && ls | grep -v '^gan_[^.]*$') 2>/dev/null  # the runs' folders are in their own archives
echo "total $(( $(date +%s) - T0 )) s"
ls -la "$OUT"
