#!/usr/bin/env bash
# One GPU lease, prepared: the demo preset's GAN trained on the GPU (issue #12: "train this
# preset's GAN on it in under 10 minutes") while bench/gpu_check.sh runs the CUDA / AMP /
# channels-last checks beside it on the same GPU. Made for the device tool's machines (bare,
# no network: packages they lack travel as wheels in .whl/, photoedit runs from the checkout).
#
#   bash bench/gpu_session.sh          # results in $OUT (at most 8 files come back)
#
# Environment: GPU_SESSION_CHECKS=0 trains the GANs alone; GPU_DEMO_VARIANTS ("a b") which GANs; GPU_DEMO_MINUTES (7.2) training wall time; GPU_DEMO_IMAGES (32768) world renders
# held in memory (rendered by every core first, ~20 s on 16 cores); GPU_CHECK_DEVICE=cpu runs
# everything on the CPU (checks the script itself; then use small minutes/images).
# Back in $OUT: gan_a.tar.gz, gan_b.tar.gz (per variant, below: config.yaml, stats.jsonl, the last
# sample grid, checkpoints/latest/generator_ema.safetensors for configs/demo/ and best/'s, the EMA
# generator at the lowest SWD of the run: 68 at 56 kimg against the last one's 88-109 in the second lease), the rest of the better
# one's checkpoint in parts (cat gan_X_ckpt.tar.gz.part* | tar -xz), gpu_check.jsonl, logs.tar.gz.
# The GAN's settings (GPU_DEMO_SET below) are the demo preset's with a GPU's batch and widths:
# 2x the CPU preset's channels (1.1 M parameters, still ~18 ms per 128x256 image on this 2-core CPU
# for the later stages), batch 32, StyleGAN2-ADA's learning rate / R1 / EMA for that batch, style
# mixing on (layer-wise W+ edits need it), 16x the images (the world is free to render).
# Measured on an H200 (27 Nov 2026, docs/BENCHMARKS.md "GPU"): at batch 64 a step is ~105 ms and
# bound by kernel launches, not arithmetic; early progress follows steps, not images (SWD stayed
# ~230 for the first 48 kimg = 750 steps at batch 64), hence batch 32. Second lease (28 Nov, both variants side
# by side, 7.2 min): ~230 img/s each, 76-80 kimg; eval-gan SWD a 104.1, b 84.5 against the committed CPU GAN's 49.0.
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

GPU_DEMO_SET=(--set gan.channel_base=2048 --set gan.channel_max=128
    --set train_gan.d_channel_base=2048 --set train_gan.d_channel_max=128
    --set train_gan.batch=32 --set train_gan.g_lr=0.0025 --set train_gan.d_lr=0.0025
    --set train_gan.r1_gamma=0.2 --set train_gan.ema_kimg=10 --set train_gan.style_mixing=0.9
    --set train_gan.data_images="$IMAGES" --set train_gan.swd_images=256
    --set train_gan.tick_kimg=8 --set train_gan.snapshot_ticks=8 --set train_gan.minutes="$MIN")

demo_gan() {  # NAME [--set ...]: AMP first; if that run fails, the rest of the time in fp32
    local name=$1 limit left; shift
    limit=$(awk "BEGIN { print int($MIN * 60 + 150) }")
    echo "demo GAN $name: ${MIN} min, ${IMAGES} images, device $DEV, extra: $*" > "$W/$name.log"
    if timeout "$limit" photoedit train-gan --config demo --data world --out "$W/$name" --device "$DEV" \
            "${GPU_DEMO_SET[@]}" "$@" >> "$W/$name.log" 2>&1; then
        echo ok > "$W/$name.status"
        return
    fi
    left=$(( 520 - ($(date +%s) - T0) ))
    echo "AMP run failed; fp32 for the $left s left" >> "$W/$name.log"
    if [ "$left" -gt 120 ]; then
        rm -rf "$W/$name"
        timeout "$left" photoedit train-gan --config demo --data world --out "$W/$name" --device "$DEV" \
            "${GPU_DEMO_SET[@]}" "$@" --set train_gan.amp=false \
            --set train_gan.minutes=$(awk "BEGIN { print ($left - 90) / 60 }") >> "$W/$name.log" 2>&1 \
            && echo "ok fp32" > "$W/$name.status" && return
    fi
    echo failed > "$W/$name.status"
}

# Variants trained side by side on the one GPU (each process is bound by its kernel launches, so
# two share the GPU at little cost to each): "a" = the settings above; "b" = 2x the widths of the
# 32..128-px layers again (channel_base 4096: 128, 128, 128, 128, 64, 32), for street detail.
PIDS=()
for v in ${GPU_DEMO_VARIANTS:-a b}; do
    case $v in
        a) demo_gan gan_a & ;;
        b) demo_gan gan_b --set gan.channel_base=4096 --set train_gan.d_channel_base=4096 & ;;
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

# per variant one archive: the run's config, stats, last sample grid and EMA generator; and for the
# variant of the lower final SWD the rest of its last checkpoint (generator, discriminator,
# optimisers, RNG, counters: with the archive, `train-gan --resume` continues it exactly), in
# 15 MB parts (the device tool returns at most 8 files of 16 MiB, 64 MiB in all)
best="" best_swd=1e9
for v in ${GPU_DEMO_VARIANTS:-a b}; do
    R=$W/gan_$v
    echo "gan_$v: $(cat "$W/gan_$v.status" 2>/dev/null)"; tail -n 3 "$W/gan_$v.log"
    [ -d "$R/checkpoints/latest" ] || continue
    last_grid=$(cd "$R" && ls fakes_*.png 2>/dev/null | sort | tail -n 1)
    tail -n 2 "$R/stats.jsonl" 2>/dev/null
    (cd "$R" && tar -czhf "$OUT/gan_$v.tar.gz" config.yaml stats.jsonl $last_grid \
        checkpoints/latest/generator_ema.safetensors checkpoints/latest/state.json \
        $(ls best/generator_ema.safetensors 2>/dev/null))
    swd=$(python3 -c "import json,sys; print([json.loads(l) for l in open(sys.argv[1])][-1].get('swd', 1e9))" "$R/stats.jsonl" 2>/dev/null || echo 1e9)
    if awk "BEGIN { exit !($swd < $best_swd) }"; then best=$v best_swd=$swd; fi
done
if [ -n "$best" ]; then
    echo "full checkpoint of gan_$best (SWD $best_swd)"
    (cd "$W/gan_$best" && tar -czhf - --exclude=generator_ema.safetensors --exclude=state.json checkpoints/latest) \
        | split -b 15000000 -d - "$OUT/gan_${best}_ckpt.tar.gz.part"
fi
cp "$W/gpu_check/gpu_check.jsonl" "$OUT/" 2>/dev/null
tar -czf "$OUT/logs.tar.gz" -C "$W" --exclude='*.safetensors' --exclude='*.pt' --exclude='*.npy' \
    --exclude='checkpoints' --exclude='run' --exclude='edited' --exclude='ddp_*' --exclude='gan_?' $(cd "$W" && ls) 2>/dev/null
echo "total $(( $(date +%s) - T0 )) s"
ls -la "$OUT"
