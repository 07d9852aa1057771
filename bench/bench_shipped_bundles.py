"""Old vs new translator bundles on the SAME held-out world scenes, through the product's edit path.

    python bench/bench_shipped_bundles.py --models translators/models --models /work/runs/demo/bundles \
        [--attributes night,sunny,...] [--size 128x256] [--n-world 64] [--n-oracle 256]
    python bench/bench_shipped_bundles.py --models translators/models --attributes night,sunny,golden_hour,foggy,snowy \
        --sheet docs/shipped_edits_world.jpg     # + the contact sheet in the README

`photoedit eval-translator` evaluates a bundle at its own training size, so a 64x64 bundle
and a 128x256 one are measured on different pictures. Here every bundle edits the same
scenes (seeds >= 1e9 where the attribute is < 0.5, rendered at --size) exactly as
`photoedit --attribute A photo.jpg` would (EditPipeline: the net at the bundle's working
size, the change carried to full size), at s = 1, against the true re-render with the
attribute set to 1. Printed per attribute: each bundle's PSNR/SSIM gain over "do nothing"
and, beside them, the oracle global 3x4 colour matrix (b) fitted on true world pairs of
other scenes at the same size. A bundle replaces another only where its gain is higher.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", action="append", required=True, metavar="DIR",
                    help="a folder of bundles <attribute>/ (repeatable; each one is a column)")
    ap.add_argument("--attributes", default="sunny,overcast,golden_hour,night,foggy,snowy")
    ap.add_argument("--size", default="128x256", help="HxW of the world scenes (default 128x256)")
    ap.add_argument("--n-world", type=int, default=64)
    ap.add_argument("--n-oracle", type=int, default=256, help="true pairs the oracle matrix (b) is fitted on")
    ap.add_argument("--json", metavar="FILE", help="also write all figures as JSON")
    ap.add_argument("--sheet", metavar="FILE", help="also write a contact sheet: per attribute, two scenes as "
                    "input | true re-render | each folder's edit")
    args = ap.parse_args()

    import numpy as np
    import torch

    from gan.images import to_uint8
    from pipeline.semantics.evaluate import (ORACLE_SEED_OFFSET, apply_global_matrix, fit_global_matrix, gains,
                                             heldout_world)
    from translators.inference import EditPipeline
    from translators.registry import is_bundle

    torch.manual_seed(0)
    size = tuple(int(v) for v in args.size.split("x"))
    results, sheet_rows = {}, []
    for attr in args.attributes.split(","):
        wx, wy, seeds = heldout_world(attr, size, args.n_world, "mixed")
        ox, oy, _ = heldout_world(attr, size, args.n_oracle, "mixed", ORACLE_SEED_OFFSET)
        row = {"seeds": [seeds[0], seeds[-1]],
               "oracle_matrix": gains(apply_global_matrix(fit_global_matrix(ox, oy), wx), wy, wx)}
        rgb = to_uint8(wx)  # [N, H, W, 3] uint8: what a photo gives the pipeline
        tiles = [[rgb[k], to_uint8(wy[k:k + 1])[0]] for k in range(2)]
        for folder in args.models:
            bundle = Path(folder) / attr
            if not is_bundle(bundle):
                row[folder] = None
                for t in tiles:
                    t.append(np.full_like(rgb[0], 255))
                continue
            pipe = EditPipeline.from_pretrained(bundle)
            outs = [pipe.edit_array(np.ascontiguousarray(img), 1.0).image for img in rgb]
            for k, t in enumerate(tiles):
                t.append(outs[k])
            out = torch.stack([torch.from_numpy(o).permute(2, 0, 1).float() / 127.5 - 1 for o in outs])
            row[folder] = gains(out, wy, wx)
            row[folder]["resolution"] = json.loads((bundle / "config.json").read_text())["resolution"]
        results[attr] = row
        sheet_rows.append((attr, tiles))
        cells = [f"{attr:<12} (b) {row['oracle_matrix']['psnr_gain_db']:+6.2f} dB"]
        for folder in args.models:
            r = row[folder]
            cells.append(f"{folder}: " + ("-" if r is None else
                                         f"{r['psnr_gain_db']:+6.2f} dB (SSIM {r['ssim_gain']:+.3f}) "
                                         f"@{'x'.join(map(str, r['resolution']))}"))
        print(" | ".join(cells), flush=True)
    if args.sheet:
        write_sheet(args.sheet, sheet_rows, ["input", "true re-render"] + [f"edit: {f}" for f in args.models])
    if args.json:
        Path(args.json).write_text(json.dumps({"size": list(size), "n_world": args.n_world,
                                               "n_oracle": args.n_oracle, "results": results}, indent=1))


def write_sheet(path: str, rows: list, columns: list[str], gap: int = 4) -> None:
    """rows: (attribute, [scene 0 tiles, scene 1 tiles]) -> one PNG, a labelled row per attribute."""
    import numpy as np
    from PIL import Image, ImageDraw

    h, w = rows[0][1][0][0].shape[:2]
    label_h, label_w = 14, 90
    per_scene = len(rows[0][1][0])
    width = label_w + 2 * per_scene * (w + gap) + gap
    sheet = Image.new("RGB", (width, label_h + len(rows) * (h + gap)), "white")
    draw = ImageDraw.Draw(sheet)
    for s in range(2):
        for c, name in enumerate(columns):
            draw.text((label_w + (s * per_scene + c) * (w + gap) + 2, 1), name, fill="black")
    for r, (attr, tiles) in enumerate(rows):
        y = label_h + r * (h + gap)
        draw.text((4, y + h // 2 - 5), attr, fill="black")
        for s, scene in enumerate(tiles):
            for c, tile in enumerate(scene):
                sheet.paste(Image.fromarray(np.asarray(tile)), (label_w + (s * per_scene + c) * (w + gap), y))
    sheet.save(path, quality=85)  # .jpg keeps it small enough for docs/
    print(f"contact sheet: {path}")


if __name__ == "__main__":
    main()
