"""LSE few-shot table (issue #15): held-out mIoU of the linear and non-linear extractors for K labelled samples.

    python bench/bench_lse.py --gan /tmp/h3_qs/gan/generator.safetensors --segmenter seg.safetensors \
        --ks 1,4,8,16,all --all-k 256 --eval 100 --json /tmp/lse_table.json

1. Sample all-k training GAN images (seeds 0..) and --eval held-out ones (seeds from 1,000,000)
   with every level's features; label all of them with the segmenter.
2. For each extractor kind and each K, fit on the first K samples and score mIoU against the
   segmenter's labels of the held-out samples (the same samples for every row).
3. Baseline in the same run: the per-pixel most frequent class of the all-k training labels
   (the layout prior, no features at all).
Prints a markdown table, K=8 / K=all per kind (LinearGAN's few-shot goal: >= 0.85), fit times.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from gan.checkpoint import load_generator
from pipeline.semantics import lse as L
from pipeline.semantics.segmenter import load_segmenter, mean_iou


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gan", required=True)
    p.add_argument("--segmenter", required=True)
    p.add_argument("--ks", default="1,4,8,16,all")
    p.add_argument("--all-k", type=int, default=256)
    p.add_argument("--eval", type=int, default=100)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--lr", type=float, default=3e-2)
    p.add_argument("--kinds", default="linear,nonlinear")
    p.add_argument("--json")
    args = p.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    ks = [args.all_k if k == "all" else int(k) for k in args.ks.split(",")]

    G = load_generator(args.gan)
    seg, labels = load_segmenter(args.segmenter)
    C = seg.cfg.num_classes
    t0 = time.time()
    images, feats = L.sample_with_features(G, range(max(ks)))
    y = seg.predict(images)
    ev_images, ev_feats = L.sample_with_features(G, range(L.EVAL_SEED_START, L.EVAL_SEED_START + args.eval))
    y_ev = seg.predict(ev_images)
    print(f"sampled + labelled {max(ks)} + {args.eval} GAN samples in {time.time() - t0:.1f} s")

    counts = np.stack([(y.numpy() == c).sum(0) for c in range(C)])
    prior = mean_iou(np.broadcast_to(counts.argmax(0), y_ev.shape), y_ev.numpy(), C)
    present = np.bincount(y_ev.numpy().ravel(), minlength=C) / y_ev.numel()
    print("held-out pixel shares: " + ", ".join(f"{labels[c]} {present[c]:.1%}" for c in range(C) if present[c]))

    rows = []
    for kind in args.kinds.split(","):
        for k in ks:
            t = time.time()
            ext = L.fit_extractor([f[:k] for f in feats], y[:k], C, kind=kind, steps=args.steps, lr=args.lr)
            miou, ious = L.extractor_iou(ext, ev_feats, y_ev)
            rows.append({"kind": kind, "k": k, "miou": miou, "fit_s": time.time() - t,
                         "iou": {labels[c]: round(float(v), 3) for c, v in enumerate(ious) if v == v}})
            print(f"{kind:<10} K={k:<5} mIoU {miou:.3f}  ({rows[-1]['fit_s']:.1f} s)", flush=True)

    print(f"\n| extractor | " + " | ".join(f"K={'all (' + str(k) + ')' if k == args.all_k else k}" for k in ks) + " |")
    print("|---|" + "---|" * len(ks))
    for kind in args.kinds.split(","):
        print(f"| {kind} | " + " | ".join(f"{r['miou']:.3f}" for r in rows if r["kind"] == kind) + " |")
    print(f"| layout prior (no features) | {prior:.3f} |")
    ratios = {}
    for kind in args.kinds.split(","):
        by_k = {r["k"]: r["miou"] for r in rows if r["kind"] == kind}
        if 8 in by_k:
            ratios[kind] = by_k[8] / by_k[args.all_k]
            print(f"{kind}: K=8 / K=all = {ratios[kind]:.2f} (goal >= 0.85)")
    print(f"load: {os.getloadavg()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "prior_miou": prior, "ratios_k8_all": ratios, "eval": args.eval,
                       "steps": args.steps, "lr": args.lr, "gan": args.gan, "load": os.getloadavg()}, f, indent=2)


if __name__ == "__main__":
    main()
