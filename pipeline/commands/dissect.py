"""GAN Dissection: every generator unit's IoU with every class; ablate a class's top units."""
from __future__ import annotations

import argparse

from pipeline.commands import add_gan_argument, add_segmenter_argument, command_parser
from pipeline.errors import UserError

EPILOG = """\
Units are the channels of each level's features (after the level's second conv). Each
unit is thresholded at its top --quantile of activations, upsampled, and scored by IoU
against the segmenter's labels of --n GAN samples (seeds 0..n-1); the paper uses >= 1000
samples. Writes DIR/dissection.json (per level: every unit's IoU with every class, its
best class) and prints, per level, how many units match each class (best IoU >= --min-iou).

--ablate CLASS zeroes the class's --units top units in --level (default: the level where
those units' mean IoU is highest) and prints the change of every class's segmented pixels
on --ablate-n other samples (seeds from 1,000,000), beside ablating as many random units
of the same level (the control).

examples:
  photoedit dissect --gan runs/gan --segmenter seg.safetensors --n 1000 --out dissect/
  photoedit dissect --gan G.safetensors --segmenter seg.safetensors --out dissect/ --ablate vegetation --units 20
"""


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("dissect", __doc__, EPILOG)
    io = p.add_argument_group("inputs and output")
    add_gan_argument(io)
    add_segmenter_argument(io)
    io.add_argument("--out", required=True, metavar="DIR", help="folder for dissection.json (created)")
    d = p.add_argument_group("dissection")
    d.add_argument("--n", type=int, default=1000, help="GAN samples scored (default: 1000)")
    d.add_argument("--quantile", type=float, default=0.99, help="per-unit activation threshold (default: 0.99)")
    d.add_argument("--min-iou", type=float, default=0.04, help="IoU for a unit to match a class (default: 0.04)")
    d.add_argument("--truncation", type=float, default=1.0, metavar="PSI", help="truncation psi (default: 1)")
    a = p.add_argument_group("ablation")
    a.add_argument("--ablate", metavar="CLASS", help="class name whose top units are zeroed, e.g. vegetation")
    a.add_argument("--units", type=int, default=20, help="how many top units to ablate (default: 20)")
    a.add_argument("--level", type=int, help="generator level to ablate in (default: best for the class)")
    a.add_argument("--ablate-n", type=int, default=200, metavar="N", help="samples measured (default: 200)")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.n < 1 or args.ablate_n < 1 or args.units < 1 or not 0 < args.quantile < 1:
        raise UserError("--n, --ablate-n and --units must be positive and --quantile in (0, 1)")
    from pathlib import Path

    import numpy as np

    from gan.checkpoint import CheckpointError, file_sha256, load_generator, resolve_generator_path
    from pipeline.fileio import write_json_atomic
    from pipeline.semantics import dissect as D
    from pipeline.semantics.lse import EVAL_SEED_START
    from pipeline.semantics.segmenter import SegmenterError, load_segmenter

    try:
        path = resolve_generator_path(args.gan)
        G = load_generator(path, "cpu")
        seg, labels = load_segmenter(args.segmenter)
    except (CheckpointError, SegmenterError) as e:
        raise UserError(str(e)) from None
    C = seg.cfg.num_classes
    names = [labels.get(c, str(c)) for c in range(C)]
    cls = None
    if args.ablate is not None:
        if args.ablate not in names:
            raise UserError(f"--ablate {args.ablate}: not a class of {args.segmenter} ({', '.join(names)})")
        cls = names.index(args.ablate)
    if args.level is not None and not 0 <= args.level < len(G.synthesis.levels):
        raise UserError(f"--level {args.level}: the generator has levels 0..{len(G.synthesis.levels) - 1}")

    widths = [c for c, _ in G.synthesis.level_shapes()]
    fits = [lv for lv, w in enumerate(widths) if w >= 2 * args.units]  # top units + as many random ones
    if cls is not None and not fits:
        raise UserError(f"--units {args.units}: no level has {2 * args.units} units (top units + a random control "
                        f"as large); level widths {widths}")
    if cls is not None and args.level is not None and args.level not in fits:
        raise UserError(f"--level {args.level} has {widths[args.level]} units: fewer than 2 x --units {args.units}")

    tables = D.unit_class_iou(G, seg.predict, C, range(args.n), args.quantile, args.truncation)
    matched = D.matched_units(tables, args.min_iou)
    print(f"units matching each class (best IoU >= {args.min_iou}) on {args.n} samples")
    print(f"{'level':<7}{'units':>6}  " + " ".join(f"{n[:8]:>8}" for n in names))
    for lv, (t, m) in enumerate(zip(tables, matched)):
        print(f"{lv:<7}{t.shape[0]:>6}  " + " ".join(f"{int(v):>8}" for v in m))
    result = {"generator": str(path), "generator_sha256": file_sha256(path), "n": args.n, "quantile": args.quantile,
              "classes": names, "levels": [
                  {"level": lv, "units": int(t.shape[0]), "matched": m.tolist(),
                   "best_class": [names[c] for c in t.argmax(1)], "best_iou": t.max(1).round(4).tolist(),
                   "iou": t.round(4).tolist()} for lv, (t, m) in enumerate(zip(tables, matched))]}

    if cls is not None:
        level = args.level
        if level is None:  # the level whose top units match the class best, with room for the control
            level = max(fits, key=lambda lv: np.sort(tables[lv][:, cls])[::-1][:args.units].mean())
        units = D.top_units(tables[level], cls, args.units)
        control = D.random_units(tables[level].shape[0], len(units), exclude=units)
        seeds = range(EVAL_SEED_START, EVAL_SEED_START + args.ablate_n)
        top = D.ablation_effect(G, seg.predict, C, seeds, level, units, args.truncation)
        rnd = D.ablation_effect(G, seg.predict, C, seeds, level, control, args.truncation)
        print(f"\nablating {len(units)} of {tables[level].shape[0]} units of level {level} "
              f"({args.ablate}'s top units vs random units), {args.ablate_n} samples: change of segmented pixels")
        print(f"{'class':<14}{'pixels':>9}{'top':>9}{'random':>9}")
        for c in range(C):
            if top["before"][c]:
                print(f"{names[c]:<14}{int(top['before'][c]):>9}{top['change'][c]:>+9.1%}{rnd['change'][c]:>+9.1%}")
        result["ablation"] = {"class": args.ablate, "level": level, "units": units, "random_units": control,
                              "n": args.ablate_n, "before": top["before"].tolist(),
                              "after_top": top["after"].tolist(), "after_random": rnd["after"].tolist()}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "dissection.json", result)
    print(f"wrote {out / 'dissection.json'}")
    return 0
