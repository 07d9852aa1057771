"""Where does the GAN edit lose the attribute? Global-matrix world gain for layer sets x strengths.

For each (W+ layers, a): a global 3x4 colour matrix is least-squares fitted on GAN pairs
(G(w), G(w + a n on those layers)) of `--n` training latents, applied to held-out world
scenes, and its PSNR gain over "do nothing" against the true re-render is printed beside
the oracle matrix fitted on true world pairs of other scenes (the same figures as
`photoedit eval-translator`'s baselines (a) and (b)). Their ratio is the GAN edit fidelity.
With --structure, each matrix (the oracle's too) also gets its luminance gain per input
channel (how the output's grey level follows R, G and B), the structure term it keeps on
the day photos of ../shared/realphotos and, for night, foggy, snowy and golden_hour, the
fall of their Lab distance to real photos of the condition (bench_real_photos.py's
measures and photos; left out without the folders). (Before 28 Nov the structure term
was taken on the folder's 9 JPEG photos, night included.)

    python bench/probe_gan_edit.py --gan RUN/gan/generator.safetensors \
        --boundary RUN/boundary-night/night.npz --strengths 3,6,10 --layers chosen,all
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
LUMA = np.array([0.299, 0.587, 0.114])


def structure_kept(M: torch.Tensor, photos: list[np.ndarray], target: np.ndarray | None = None) -> dict:
    """Luminance gain per input channel of the matrix M [3, 4], the mean structure term it
    keeps on `photos` (uint8 RGB) when applied to them as a global colour change, and with
    `target` (pooled Lab pixels of real photos of the condition) the fall of the Lab distance
    to them from "do nothing" (bench_real_photos.py's colour measure)."""
    from bench_real_photos import lab_distance, pooled_lab, structure_term
    from pipeline.semantics.evaluate import apply_global_matrix

    kept, edited = [], []
    for im in photos:
        x = torch.from_numpy(im.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
        y = apply_global_matrix(M, x)[0].permute(1, 2, 0).numpy()
        edited.append(((y + 1) * 127.5).clip(0, 255).astype(np.uint8))
        kept.append(structure_term(im, edited[-1]))
    out = {"luminance_gain_rgb": [round(float(v), 3) for v in LUMA @ M[:, :3].numpy()],
           "real_structure": round(float(np.mean(kept)), 3) if kept else None}
    if photos and target is not None:
        out["lab_fall"] = round(1 - lab_distance(pooled_lab(edited), target) / lab_distance(pooled_lab(photos), target), 3)
    return out


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
    p.add_argument("--structure", action="store_true",
                   help="also each matrix's luminance gain, the real-photo structure it keeps and its Lab fall")
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
    M_oracle = fit_global_matrix(ox, oy)
    oracle = gains(apply_global_matrix(M_oracle, wx), wy, wx)["psnr_gain_db"]
    photos, target = [], None
    if args.structure:
        from bench_real_photos import CONDITION_OF, CONDITIONS, PHOTOS, condition_photos, day_photos, pooled_lab

        photos = day_photos() if PHOTOS.is_dir() else []
        if attr in CONDITION_OF and CONDITIONS.is_dir():
            target = pooled_lab(condition_photos(CONDITION_OF[attr]))
    extra = (lambda M: structure_kept(M, photos, target)) if args.structure else (lambda M: {})
    shown = lambda d: "".join(f", {k} {v}" for k, v in d.items())  # noqa: E731
    print(f"{attr}: oracle global matrix (b) {oracle:+.2f} dB on {args.n_world} world scenes"
          f"{shown(extra(M_oracle))}; boundary layers {b.layers}")
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
            M = fit_global_matrix(torch.cat(xs), torch.cat(ys))
            g = gains(apply_global_matrix(M, wx), wy, wx)["psnr_gain_db"]
            more = extra(M)
            rows.append({"layers": spec, "a": a, "gan_matrix_db": g, "oracle_matrix_db": oracle,
                         "fidelity": round(g / oracle, 3), **more})
            print(f"  layers {spec:<8} a = {a:>5.1f}: (a) {g:+.2f} dB, fidelity (a)/(b) {g / oracle:.2f}{shown(more)}",
                  flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
