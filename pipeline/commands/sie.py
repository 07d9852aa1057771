"""Semantic image editing: repaint a region of a GAN sample with another class, keeping the rest."""
from __future__ import annotations

import argparse

from pipeline.commands import add_gan_argument, command_parser, load_gan_and_extractor
from pipeline.errors import UserError

EPILOG = """\
LinearGAN's semantic image editing. The sample is a GAN seed (the image `photoedit sample`
draws for it) or a latent file. The linear semantic extractor (`photoedit lse`) labels it;
you say what to change with a mask PNG (white = the region, or opaque pixels of a PNG with
transparency) and --to CLASS, or with a --paint PNG of class ids (255 = keep). The W+
code is then optimised so the extractor sees the painted class inside the region and the
original labels outside it, while the pixels outside the region are pulled toward the
original image (--pixel-weight) and the code toward its start (--reg-weight).

It writes, in --out DIR: before.png, after.png, labels_before.png / labels_after.png (the
extractor's labels, coloured), paint.png (the requested layout, black = keep),
w_plus.npy (the edited code, [num_ws, w_dim]: feed it back with --latent) and sie.json
(settings, the loss curve, and the scores: the share of the region showing the class, and
the PSNR outside the region). With --segmenter the scores are also judged by that
independent labeller: the region's IoU with the painted class (pixels newly labelled that
class outside the region count against it).

--blend features replaces the generator's features and RGB outputs outside the region by
the original's at every level (spatial feature blending, as in Collins et al.'s local
editing): the pixels outside stay exactly the original's, the coarser levels let the inside
fit its surroundings; the loss terms that hold the outside are then not needed, and
--keep-weight 0 --pixel-weight 0 --reg-weight 0 leave the region freest. The default (none) is
LinearGAN's plain edit: the whole image may drift and only those terms hold the outside.

examples:
  photoedit sie --gan runs/gan --lse lse.safetensors --seed 7 --mask sky.png --to vegetation --out sie7/
  photoedit sie --gan G.safetensors --lse lse.safetensors --latent sie7/w_plus.npy --paint layout.png --out again/
  photoedit sie --gan G.safetensors --lse lse.safetensors --seed 3 --mask m.png --to sky --blend features \\
      --keep-weight 0 --pixel-weight 0 --reg-weight 0 --segmenter seg.safetensors --out sie3/
"""


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("sie", __doc__, EPILOG)
    io = p.add_argument_group("inputs and output")
    add_gan_argument(io)
    io.add_argument("--lse", required=True, metavar="FILE", help="semantic extractor from `photoedit lse`")
    src = io.add_mutually_exclusive_group(required=True)
    src.add_argument("--seed", type=int, help="edit the sample of this seed")
    src.add_argument("--latent", metavar="FILE.npy", help="edit this code: w [w_dim], W+ [num_ws, w_dim], or rows "
                                                          "of either (pick one with --row)")
    io.add_argument("--row", type=int, metavar="I", help="row of a --latent file holding several codes (default 0)")
    what = io.add_mutually_exclusive_group(required=True)
    what.add_argument("--mask", metavar="PNG", help="region to repaint (white, or opaque pixels); needs --to")
    what.add_argument("--paint", metavar="PNG", help="class id per pixel, 255 = keep (grayscale or palette PNG)")
    io.add_argument("--to", metavar="CLASS", help="class for the --mask region: a name (e.g. vegetation) or id")
    io.add_argument("--segmenter", metavar="FILE", help="also score the edit with this independent labeller")
    io.add_argument("--out", required=True, metavar="DIR", help="folder for the images, code and sie.json")
    o = p.add_argument_group("optimisation")
    o.add_argument("--steps", type=int, default=100, help="Adam steps on the W+ code (default: 100)")
    o.add_argument("--lr", type=float, default=0.01, help="learning rate (default: 0.01)")
    o.add_argument("--keep-weight", type=float, default=1.0, help="weight of keeping the labels outside (default: 1)")
    o.add_argument("--pixel-weight", type=float, default=10.0,
                   help="weight of the pixel error outside the region (default: 10)")
    o.add_argument("--reg-weight", type=float, default=1e-3, help="pull toward the starting code (default: 1e-3)")
    o.add_argument("--space", choices=["wplus", "w"], default="wplus",
                   help="wplus: every layer's code moves freely (default); w: all by one shared offset")
    o.add_argument("--blend", choices=["none", "features"], default="none",
                   help="features: keep the generator's features outside the region, so its pixels stay "
                        "exactly (default: none)")
    o.add_argument("--truncation", type=float, default=1.0, metavar="PSI", help="truncation psi for --seed (default: 1)")
    return p


def _latent(path: str, row, G):
    import numpy as np
    import torch

    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable .npy array ({e})") from None
    if not np.issubdtype(a.dtype, np.floating):
        raise UserError(f"{path}: expected floats, got {a.dtype}")
    single = a.shape in ((G.w_dim,), (G.num_ws, G.w_dim))
    if single and row in (None, 0):
        return torch.from_numpy(a.astype(np.float32))
    if a.ndim in (2, 3) and a.shape[-1] == G.w_dim and (a.ndim == 2 or a.shape[1] == G.num_ws):
        i = row or 0
        if not 0 <= i < len(a):
            raise UserError(f"--row {i}: {path} holds {len(a)} codes")
        return torch.from_numpy(a[i].astype(np.float32))
    raise UserError(f"{path}: shape {list(a.shape)}; expected w [{G.w_dim}], W+ [{G.num_ws}, {G.w_dim}] "
                    f"or rows of either")


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.mask and args.to is None:
        raise UserError("--mask needs --to CLASS (the class the region becomes)")
    if args.paint and args.to is not None:
        raise UserError("--to goes with --mask; a --paint PNG carries its classes itself")
    if args.steps < 1 or args.lr <= 0 or min(args.keep_weight, args.pixel_weight, args.reg_weight) < 0:
        raise UserError("--steps and --lr must be positive, the weights >= 0")

    from pathlib import Path

    import numpy as np
    import torch

    from gan.checkpoint import file_sha256
    from gan.images import to_uint8
    from pipeline.fileio import write_json_atomic
    from pipeline.progress import progress_bar
    from pipeline.semantics import layouts as LY
    from pipeline.semantics import sie as S
    from pipeline.semantics.segmenter import IGNORE

    G, path, ext, labels, seg = load_gan_and_extractor(args.gan, args.lse, args.segmenter)
    size = tuple(G.resolution)
    C = ext.cfg.num_classes
    try:
        if args.mask:
            cls = LY.class_id(args.to, labels, args.lse)
            region = LY.read_mask_png(args.mask, size)
            paint = np.where(region, cls, S.KEEP)
        else:
            lay = LY.read_layout_png(args.paint, size, C)
            paint = np.where(lay == IGNORE, S.KEEP, lay)
    except LY.LayoutError as e:
        raise UserError(str(e)) from None
    paint = torch.from_numpy(paint.astype(np.int64))
    if args.seed is not None:
        if args.row is not None:
            raise UserError("--row goes with --latent")
        ws = S.w_plus_for_seed(G, args.seed, args.truncation)
    else:
        ws = S.as_w_plus(G, _latent(args.latent, args.row, G))

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bar = progress_bar(total=args.steps, desc="sie", unit="step")
    res = S.semantic_edit(G, ext, ws, paint, steps=args.steps, lr=args.lr, keep_weight=args.keep_weight,
                          pixel_weight=args.pixel_weight, reg_weight=args.reg_weight,
                          blend=args.blend, space=args.space, progress=lambda i, row: bar.update(1))
    bar.close()
    region = paint != S.KEEP
    lse_scores = {
        "region_pixels": int(region.sum()),
        "region_fraction_before": float((res.before_labels[region] == paint[region]).float().mean()),
        "region_fraction": float((res.labels[region] == paint[region]).float().mean()),
        "psnr_outside": S.psnr(res.before_image, res.image, ~region),
    }
    report = {"generator": str(path), "generator_sha256": file_sha256(path), "lse": str(args.lse),
              "start": {"seed": args.seed} if args.seed is not None else {"latent": args.latent, "row": args.row},
              "classes": {str(c): labels.get(c, str(c)) for c in sorted(int(v) for v in paint[region].unique())},
              "settings": {k: getattr(args, k) for k in ("steps", "lr", "keep_weight", "pixel_weight", "reg_weight",
                                                             "blend", "space")},
              "scores_by_lse": lse_scores,
              "loss": [round(r["loss"], 5) for r in res.history]}
    if seg is not None:
        sc = S.edit_scores(seg.predict, res.before_image, res.image, paint)
        sc["region_iou"] = {labels.get(c, str(c)): v for c, v in sc["region_iou"].items()}
        report["scores_by_segmenter"] = sc
    LY.write_png(out / "before.png", to_uint8(res.before_image)[0])
    LY.write_png(out / "after.png", to_uint8(res.image)[0])
    LY.write_png(out / "labels_before.png", LY.colorize(res.before_labels.numpy()))
    LY.write_png(out / "labels_after.png", LY.colorize(res.labels.numpy()))
    LY.write_png(out / "paint.png", LY.colorize(paint.numpy()))
    LY.write_npy(out / "w_plus.npy", res.w_plus[0].numpy())
    write_json_atomic(out / "sie.json", report)
    names = ", ".join(report["classes"].values())
    print(f"repainted {lse_scores['region_pixels']} pixels as {names}: the extractor sees the class on "
          f"{lse_scores['region_fraction_before']:.0%} -> {lse_scores['region_fraction']:.0%} of the region; "
          + ("outside unchanged" if lse_scores["psnr_outside"] >= S.PSNR_CAP
             else f"PSNR outside {lse_scores['psnr_outside']:.1f} dB"))
    if seg is not None:
        sc = report["scores_by_segmenter"]
        print(f"segmenter: region {sc['region_fraction_before']:.0%} -> {sc['region_fraction']:.0%}, "
              f"region IoU {sc['region_miou']:.2f}")
    print(f"wrote {out}/ (before.png, after.png, labels_*.png, paint.png, w_plus.npy, sie.json)")
    return 0
