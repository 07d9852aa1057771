"""Where does the GAN edit lose the attribute? Global-matrix world gain for layer sets x strengths.

For each (W+ layers, a): a global 3x4 colour matrix is least-squares fitted on GAN pairs
(G(w), G(w + a n on those layers)) of `--n` training latents, applied to held-out world
scenes, and its PSNR gain over "do nothing" against the true re-render is printed beside
the oracle matrix fitted on true world pairs of other scenes (the same figures as
`photoedit eval-translator`'s baselines (a) and (b)). Their ratio is the GAN edit fidelity.

    python bench/probe_gan_edit.py --gan RUN/gan/generator.safetensors \
        --boundary RUN/boundary-night/night.npz --strengths 3,6,10 --layers chosen,all
"""
from __future__ import annotations

import argparse
import json

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gan", required=True)
    p.add_argument("--boundary", required=True)
    p.add_argument("--strengths", default="3,6,10", help="edit distances a along the unit normal")
    p.add_argument("--layers", default="chosen,all", help="comma list of: chosen (the boundary's), all, or i-j ranges")
    p.add_argument("--n", type=int, default=256, help="GAN pairs per fit")
    p.add_argument("--n-world", type=int, default=64, help="held-out world scenes")
    p.add_argument("--n-oracle", type=int, default=512, help="true world pairs for the oracle matrix")
    p.add_argument("--truncation", type=float, default=0.8)
    p.add_argument("--json", metavar="FILE", help="also write the table here")
    args = p.parse_args()

    from gan.checkpoint import load_generator
    from pipeline.semantics.boundary import LinearBoundary
    from pipeline.semantics.evaluate import (ORACLE_SEED_OFFSET, apply_global_matrix, fit_global_matrix, gains,
                                             heldout_world)
    from pipeline.semantics.pairs import render_pairs

    torch.set_num_threads(1)
    G = load_generator(args.gan).eval()
    b = LinearBoundary.load(args.boundary)
    attr = b.meta["attribute"]
    size = tuple(G.cfg.resolution)
    wx, wy, _ = heldout_world(attr, size, args.n_world, "mixed")
    ox, oy, _ = heldout_world(attr, size, args.n_oracle, "mixed", ORACLE_SEED_OFFSET)
    oracle = gains(apply_global_matrix(fit_global_matrix(ox, oy), wx), wy, wx)["psnr_gain_db"]
    print(f"{attr}: oracle global matrix (b) {oracle:+.2f} dB on {args.n_world} world scenes; boundary layers {b.layers}")
    rows = []
    for spec in args.layers.split(","):
        if spec == "chosen":
            layers = list(b.layers)
        elif spec == "all":
            layers = list(range(G.num_ws))
        else:
            lo, hi = (int(v) for v in spec.split("-"))
            layers = list(range(lo, hi + 1))
        bl = LinearBoundary(b.normal, b.intercept, layers, dict(b.meta))
        for a in (float(v) for v in args.strengths.split(",")):
            xs, ys = [], []
            for start in range(0, args.n, 32):
                seeds = list(range(start, min(args.n, start + 32)))
                x, y = render_pairs(G, bl, seeds, torch.full((len(seeds),), a), args.truncation)
                xs.append(x), ys.append(y)
            g = gains(apply_global_matrix(fit_global_matrix(torch.cat(xs), torch.cat(ys)), wx), wy, wx)["psnr_gain_db"]
            rows.append({"layers": spec, "a": a, "gan_matrix_db": g, "oracle_matrix_db": oracle,
                         "fidelity": round(g / oracle, 3)})
            print(f"  layers {spec:<8} a = {a:>5.1f}: (a) {g:+.2f} dB, fidelity (a)/(b) {g / oracle:.2f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
