"""GAN Dissection: every generator unit's IoU with every class; ablate or insert a class through its units."""
from __future__ import annotations

import argparse

from pipeline.commands import add_gan_argument, add_segmenter_argument, command_parser
from pipeline.errors import UserError

EPILOG = """\
Units are the channels of each level's features (after the level's second conv). Each
unit is thresholded at its top --quantile of activations, upsampled, and scored by IoU
against the segmenter's labels of --n GAN samples (seeds 0..n-1); the paper uses >= 1000
samples. Writes DIR/dissection.json (per level: every unit's IoU with every class, its
best class), DIR/units.csv (the unit-class table: one row per unit) and DIR/dissection.png
(per level, how many units match each class: best IoU >= --min-iou; needs matplotlib),
and prints the counts.

--ablate CLASS sets the class's --units top units in --level (default: the level where
those units' mean IoU is highest; with --select causal, the level whose units score best)
to zero or to their mean (--ablate-value) and prints the change of every
class's segmented pixels on --ablate-n other samples (seeds from 1,000,000), beside
ablating as many random units of the same level (the control). Units are chosen by IoU
(--select iou, the paper's dissection) or by their own effect: each unit of the level
ablated alone on --select-n samples (seeds from 2,000,000), scored by its change of the
class's pixels plus its largest |change| of another class with >= 1% of the pixels (or the
pixel-weighted mean |change|: --specificity mean), the lowest first (--select causal: the
paper's causal ranking, made specific; one pass per unit).
Writes DIR/ablation.png: samples, with the top units ablated, with random units ablated.

--insert CLASS --region X0,Y0,X1,Y1 (pixels of the generator's image) sets the class's top
units to their high activation (their --quantile) inside the region and reports how much of
the region the segmenter labels CLASS before and after, and the mean pixel change outside
the region; DIR/insertion.png shows samples before and after.

examples:
  photoedit dissect --gan runs/gan --segmenter seg.safetensors --n 1000 --out dissect/
  photoedit dissect --gan G.safetensors --segmenter seg.safetensors --out dissect/ --ablate vegetation --units 20
  photoedit dissect --gan G.safetensors --segmenter seg.safetensors --out dissect/ --ablate vegetation \\
      --select causal --ablate-value mean
  photoedit dissect --gan G.safetensors --segmenter seg.safetensors --out dissect/ --insert vegetation \\
      --region 0,16,32,48
"""

SHEET_N = 6  # samples shown in the ablation and insertion sheets


def build_parser() -> argparse.ArgumentParser:
    from pipeline.semantics.dissect import ABLATE_VALUES, SELECTIONS, SPECIFICITY

    p = command_parser("dissect", __doc__, EPILOG)
    io = p.add_argument_group("inputs and output")
    add_gan_argument(io)
    add_segmenter_argument(io)
    io.add_argument("--out", required=True, metavar="DIR",
                    help="folder for dissection.json, units.csv, dissection.png (created)")
    d = p.add_argument_group("dissection")
    d.add_argument("--n", type=int, default=1000, help="GAN samples scored (default: 1000)")
    d.add_argument("--quantile", type=float, default=0.99, help="per-unit activation threshold (default: 0.99)")
    d.add_argument("--min-iou", type=float, default=0.04, help="IoU for a unit to match a class (default: 0.04)")
    d.add_argument("--truncation", type=float, default=1.0, metavar="PSI", help="truncation psi (default: 1)")
    d.add_argument("--no-chart", action="store_true", help="skip dissection.png (no matplotlib needed)")
    a = p.add_argument_group("ablation and insertion")
    a.add_argument("--ablate", metavar="CLASS", help="class name whose top units are switched off, e.g. vegetation")
    a.add_argument("--insert", metavar="CLASS", help="class name whose top units are switched on in --region")
    a.add_argument("--region", metavar="X0,Y0,X1,Y1", help="--insert's box in image pixels (x1, y1 exclusive)")
    a.add_argument("--units", type=int, default=20, help="how many top units (default: 20)")
    a.add_argument("--level", type=int, help="generator level to work in (default: best for the class)")
    a.add_argument("--select", choices=SELECTIONS, default="iou",
                   help="rank units by IoU with the class, or by the effect of ablating each alone (default: iou)")
    a.add_argument("--select-n", type=int, default=100, metavar="N",
                   help="samples per unit for --select causal (default: 100)")
    a.add_argument("--specificity", choices=SPECIFICITY, default="max",
                   help="--select causal: penalise a unit by its largest change of another class (>= 1%% of the "
                        "pixels), or by the pixel-weighted mean change of the others (default: max)")
    a.add_argument("--ablate-value", choices=ABLATE_VALUES, default="zero",
                   help="what an ablated unit outputs: zero, or its mean activation (default: zero)")
    a.add_argument("--ablate-n", type=int, default=200, metavar="N", help="samples measured (default: 200)")
    return p


def parse_region(text: str, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """'x0,y0,x1,y1' -> ints inside an image of size (H, W), x0 < x1, y0 < y1."""
    try:
        x0, y0, x1, y1 = (int(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"--region '{text}': expected X0,Y0,X1,Y1 in pixels, e.g. 0,16,32,48") from None
    h, w = size
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise UserError(f"--region '{text}': must lie inside the {w}x{h} image with x0 < x1 and y0 < y1")
    return x0, y0, x1, y1


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.n < 1 or args.ablate_n < 1 or args.units < 1 or args.select_n < 1 or not 0 < args.quantile < 1:
        raise UserError("--n, --ablate-n, --select-n and --units must be positive and --quantile in (0, 1)")
    if (args.insert is None) != (args.region is None):
        raise UserError("--insert CLASS and --region X0,Y0,X1,Y1 go together")
    from pathlib import Path

    import numpy as np

    from gan.checkpoint import CheckpointError, file_sha256, load_generator, resolve_generator_path
    from pipeline.fileio import atomic_write_text, write_json_atomic
    from pipeline.run.figures import dissection_chart, grid, save
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

    def class_index(flag: str, name: str | None) -> int | None:
        if name is None:
            return None
        if name not in names:
            raise UserError(f"{flag} {name}: not a class of {args.segmenter} ({', '.join(names)})")
        return names.index(name)

    cls, ins = class_index("--ablate", args.ablate), class_index("--insert", args.insert)
    region = parse_region(args.region, tuple(G.resolution)) if args.region else None
    if args.level is not None and not 0 <= args.level < len(G.synthesis.levels):
        raise UserError(f"--level {args.level}: the generator has levels 0..{len(G.synthesis.levels) - 1}")

    widths = [c for c, _ in G.synthesis.level_shapes()]
    fits = [lv for lv, w in enumerate(widths) if w >= 2 * args.units]  # top units + as many random ones
    if cls is not None and not fits:
        raise UserError(f"--units {args.units}: no level has {2 * args.units} units (top units + a random control "
                        f"as large); level widths {widths}")
    if cls is not None and args.level is not None and args.level not in fits:
        raise UserError(f"--level {args.level} has {widths[args.level]} units: fewer than 2 x --units {args.units}")
    if ins is not None and args.level is not None and widths[args.level] < args.units:
        raise UserError(f"--level {args.level} has {widths[args.level]} units: fewer than --units {args.units}")

    from tqdm import tqdm

    with tqdm(total=args.n, desc="dissection", unit="sample", disable=None) as bar:
        tables = D.unit_class_iou(G, seg.predict, C, range(args.n), args.quantile, args.truncation,
                                  progress=bar.update)
    matched = D.matched_units(tables, args.min_iou)
    print(f"units matching each class (best IoU >= {args.min_iou}) on {args.n} samples")
    print(f"{'level':<7}{'units':>6}  " + " ".join(f"{n[:8]:>8}" for n in names))
    for lv, (t, m) in enumerate(zip(tables, matched)):
        print(f"{lv:<7}{t.shape[0]:>6}  " + " ".join(f"{int(v):>8}" for v in m))
    result = {"generator": str(path), "generator_sha256": file_sha256(path), "n": args.n, "quantile": args.quantile,
              "min_iou": args.min_iou, "classes": names, "levels": [
                  {"level": lv, "units": int(t.shape[0]), "matched": m.tolist(),
                   "best_class": [names[c] for c in t.argmax(1)], "best_iou": t.max(1).round(4).tolist(),
                   "iou": t.round(4).tolist()} for lv, (t, m) in enumerate(zip(tables, matched))]}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "units.csv", D.unit_table_csv(tables, names))
    if not args.no_chart:
        dissection_chart(matched, names, widths, out / "dissection.png", args.min_iou)

    stats = D.unit_stats(G, range(min(args.n, 200)), args.truncation, args.quantile)
    ablate_values = (lambda lv, units: None) if args.ablate_value == "zero" else \
        (lambda lv, units: stats[lv]["mean"][units])

    def choose(c: int, allowed: list[int]) -> tuple[int, list[int], dict]:
        """(level, top units, selection details) for class c."""
        if args.select == "iou":
            level = args.level if args.level is not None else \
                max(allowed, key=lambda lv: np.sort(tables[lv][:, c])[::-1][:args.units].mean())
            return level, D.top_units(tables[level], c, args.units), {}
        levels = [args.level] if args.level is not None else allowed
        seeds = range(D.SELECT_SEED_START, D.SELECT_SEED_START + args.select_n)
        share = D.class_pixels(G, seg.predict, C, seeds, args.truncation)
        share = share / max(share.sum(), 1)
        if args.specificity == "max":
            share = (share >= 0.01).astype(float)  # the classes the goal checks
        picks = {}
        with tqdm(total=sum(widths[lv] for lv in levels), desc=f"units' effect on {names[c]}", unit="unit",
                  disable=None) as bar:
            for lv in levels:
                mean = stats[lv]["mean"] if args.ablate_value == "mean" else None
                effects = D.unit_causal_effect(G, seg.predict, C, seeds, lv, mean, args.truncation,
                                               progress=bar.update)
                picks[lv] = (D.causal_units(effects, c, args.units, share, args.specificity), effects)
        # the level whose chosen units score best: each alone removes most of the class, least of the rest
        level = min(levels, key=lambda lv: D.causal_scores(picks[lv][1], c, share,
                                                           args.specificity)[picks[lv][0]].sum())
        units, effects = picks[level]
        return level, units, {"effect_alone": effects[units].round(4).tolist(), "specificity": args.specificity}

    if cls is not None:
        level, units, detail = choose(cls, fits)
        control = D.random_units(widths[level], len(units), exclude=units)
        seeds = range(EVAL_SEED_START, EVAL_SEED_START + args.ablate_n)
        top = D.ablation_effect(G, seg.predict, C, seeds, level, units, args.truncation, ablate_values(level, units))
        rnd = D.ablation_effect(G, seg.predict, C, seeds, level, control, args.truncation,
                                ablate_values(level, control))
        print(f"\nablating ({args.ablate_value}) {len(units)} of {widths[level]} units of level {level} "
              f"({args.ablate}'s top units by {args.select} vs random units), {args.ablate_n} samples: "
              "change of segmented pixels")
        print(f"{'class':<14}{'pixels':>9}{'top':>9}{'random':>9}")
        for c in range(C):
            if top["before"][c]:
                print(f"{names[c]:<14}{int(top['before'][c]):>9}{top['change'][c]:>+9.1%}{rnd['change'][c]:>+9.1%}")
        verdict = D.ablation_verdict(top, cls)
        other = verdict["largest_other_class"]
        print(f"goal (>= 50% of {args.ablate} removed, every other class within 10%): "
              f"{'met' if verdict['met'] else 'not met'} ({args.ablate} {-verdict['removed']:+.1%}, "
              f"largest other change {verdict['largest_other']:+.1%} on {None if other is None else names[other]})")
        result["ablation"] = {"class": args.ablate, "level": level, "units": units, "random_units": control,
                              "select": args.select, "value": args.ablate_value, "n": args.ablate_n,
                              "before": top["before"].tolist(), "after_top": top["after"].tolist(),
                              "after_random": rnd["after"].tolist(), "goal_met": verdict["met"], **detail}
        save(grid(D.ablation_rows(G, level, units, control, range(EVAL_SEED_START, EVAL_SEED_START + SHEET_N),
                                  args.truncation, ablate_values(level, units), ablate_values(level, control))),
             out / "ablation.png", scale=2)

    if ins is not None:
        allowed = [lv for lv, w in enumerate(widths) if w >= args.units]
        level, units, detail = choose(ins, allowed)
        values = stats[level]["high"][units]
        seeds = range(EVAL_SEED_START, EVAL_SEED_START + args.ablate_n)
        effect = D.insertion_effect(G, seg.predict, seeds, level, units, values, region, ins, args.truncation)
        print(f"\ninserting {args.insert}: {len(units)} units of level {level} set to their "
              f"top-{1 - args.quantile:.0%} value in x {region[0]}..{region[2]}, y {region[1]}..{region[3]} "
              f"on {args.ablate_n} samples")
        print(f"  {args.insert} inside the region: {effect['inside_before']:.1%} -> {effect['inside_after']:.1%}; "
              f"elsewhere {effect['outside_before']:.1%} -> {effect['outside_after']:.1%}; "
              f"mean pixel change outside {effect['outside_change']:.4f} (inside {effect['inside_change']:.4f}, "
              "images in [-1, 1])")
        result["insertion"] = {"class": args.insert, "level": level, "units": units, "region": list(region),
                               "select": args.select, "n": args.ablate_n, **effect, **detail}
        save(grid(D.insertion_rows(G, level, units, values, region,
                                   range(EVAL_SEED_START, EVAL_SEED_START + SHEET_N), args.truncation)),
             out / "insertion.png", scale=2)

    write_json_atomic(out / "dissection.json", result)
    print(f"wrote {out / 'dissection.json'}, {out / 'units.csv'}"
          + ("" if args.no_chart else f", {out / 'dissection.png'}"))
    return 0
