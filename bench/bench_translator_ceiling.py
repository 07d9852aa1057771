"""The translator's own ceiling: train it on TRUE world pairs and compare with one global colour matrix.

No GAN involved: (x, y) = a held-out world scene and its re-render with the attribute set
to 1 (scenes of the oracle seed range), the translator trained at s = 1 with the given
architecture and settings, then measured on the evaluation scenes of `photoedit
eval-translator` (PSNR gain over "do nothing" against the true re-render). Printed beside
it, from the same run: the oracle global 3x4 matrix fitted on the same training pairs.
A translator architecture worth shipping must beat that matrix here, where its targets
are perfect.

    python bench/bench_translator_ceiling.py --attribute night --arch kind=affine --train steps=800
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time


def parse_kv(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = json.loads(value) if value[:1] in "[{0123456789-.tf" and value not in ("true", "false") else value
        if value in ("true", "false"):
            out[key] = value == "true"
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--attribute", default="night")
    p.add_argument("--size", default="64,64", help="H,W of the world renders")
    p.add_argument("--arch", nargs="*", default=[], help="TranslatorConfig fields, key=value")
    p.add_argument("--train", nargs="*", default=[], help="TrainTranslatorConfig fields, key=value")
    p.add_argument("--n-train", type=int, default=512)
    p.add_argument("--n-world", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", metavar="FILE", help="append the result row here (JSON lines)")
    args = p.parse_args()

    import torch

    from pipeline.semantics.evaluate import (ORACLE_SEED_OFFSET, _WorldPairs, apply_global_matrix, fit_global_matrix,
                                             gains, heldout_world, translate)
    from translators.networks import TranslatorConfig
    from translators.training import TrainTranslatorConfig, train_translator

    torch.set_num_threads(args.threads)
    size = tuple(int(v) for v in args.size.split(","))
    wx, wy, _ = heldout_world(args.attribute, size, args.n_world, "mixed")
    ox, oy, _ = heldout_world(args.attribute, size, args.n_train, "mixed", ORACLE_SEED_OFFSET)
    matrix = gains(apply_global_matrix(fit_global_matrix(ox, oy), wx), wy, wx)
    arch = TranslatorConfig(**{"ngf": 16, "n_downsample": 3, "n_blocks": 4, **parse_kv(args.arch)})
    train_kv = {"batch": 8, "steps": 800, "ndf": 16, "num_d": 2, **parse_kv(args.train)}
    if "crop_scale" in train_kv:
        train_kv["crop_scale"] = tuple(train_kv["crop_scale"])
    cfg = TrainTranslatorConfig(**{**train_kv, "log_every": 50, "grid_every": 10**9, "snapshot_every": 10**9})
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as run_dir:
        model, last = train_translator(_WorldPairs(ox, oy, 1.0), arch, cfg, run_dir, 1.0, progress=False,
                                       device="cpu", log=lambda m: None)
    minutes = (time.perf_counter() - t0) / 60
    net = gains(translate(model, wx, 1.0, 16, "cpu"), wy, wx)
    row = {"attribute": args.attribute, "size": list(size), "arch": parse_kv(args.arch), "train": train_kv,
           "translator_db": net["psnr_gain_db"], "translator_ssim_gain": net["ssim_gain"],
           "oracle_matrix_db": matrix["psnr_gain_db"], "oracle_matrix_ssim_gain": matrix["ssim_gain"],
           "last_l1": round(last.get("l1", float("nan")), 4), "train_minutes": round(minutes, 2)}
    print(f"{args.attribute} {size} arch {row['arch']} train {parse_kv(args.train)}: translator on true pairs "
          f"{row['translator_db']:+.2f} dB (SSIM {row['translator_ssim_gain']:+.3f}) vs oracle global matrix "
          f"{row['oracle_matrix_db']:+.2f} dB (SSIM {row['oracle_matrix_ssim_gain']:+.3f}); last L1 {row['last_l1']}, "
          f"{minutes:.1f} min", flush=True)
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
