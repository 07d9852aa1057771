"""What a global colour change does to structure: the oracle matrix (b) and GAN-pair matrices.

    python bench/probe_global_structure.py --gan G --boundary B.npz [--layers all,4-11] [--strengths 3,6]

For the boundary's attribute: the global 3x4 colour matrix least-squares fitted on true world pairs
(the oracle (b) of `photoedit eval-translator`) and on GAN pairs for each W+ layer set x strength,
each with its PSNR gain on 64 held-out world scenes, its luminance gain per input channel (how the
output's grey level follows R, G and B) and the structure term it keeps on the JPEG photos of
../shared/realphotos (bench_real_photos.py's measure; skipped when the folder is absent).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_real_photos import PHOTOS, load_rgb, structure_term  # noqa: E402

LUMA = np.array([0.299, 0.587, 0.114])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gan", required=True)
    p.add_argument("--boundary", required=True)
    p.add_argument("--layers", default="all", help="comma list of: all, or i-j ranges")
    p.add_argument("--strengths", default="3,6")
    p.add_argument("--n", type=int, default=128, help="GAN pairs per fit")
    p.add_argument("--truncation", type=float, default=0.8)
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
    wx, wy, _ = heldout_world(attr, size, 64, "mixed")
    ox, oy, _ = heldout_world(attr, size, 256, "mixed", ORACLE_SEED_OFFSET)
    photos = [load_rgb(f) for f in sorted(PHOTOS.glob("*.jpg"))] if PHOTOS.is_dir() else []

    def report(name: str, M: torch.Tensor) -> None:
        gain = gains(apply_global_matrix(M, wx), wy, wx)["psnr_gain_db"]
        kept = []
        for im in photos:
            x = torch.from_numpy(im.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
            y = apply_global_matrix(M, x)[0].permute(1, 2, 0).numpy()
            kept.append(structure_term(im, ((y + 1) * 127.5).clip(0, 255).astype(np.uint8)))
        structure = f"{np.mean(kept):.3f} ({len(kept)} photos)" if kept else "- (no ../shared/realphotos)"
        print(f"{name:30s} world {gain:+.2f} dB  luminance gain R/G/B {np.round(LUMA @ M[:, :3].numpy(), 3)}  "
              f"real-photo structure {structure}", flush=True)

    report(f"{attr}: true world pairs (b)", fit_global_matrix(ox, oy))
    for spec in args.layers.split(","):
        if spec == "all":
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
            report(f"GAN pairs, layers {spec}, a = {a:g}", fit_global_matrix(torch.cat(xs), torch.cat(ys)))


if __name__ == "__main__":
    main()
