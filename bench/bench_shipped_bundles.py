"""Old vs new translator bundles on the SAME held-out world scenes, through the product's edit path.

    python bench/bench_shipped_bundles.py --models translators/models --models /work/runs/demo/bundles \
        [--attributes night,sunny,...] [--size 128x256] [--n-world 64] [--n-oracle 256]

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
    results = {}
    for attr in args.attributes.split(","):
        wx, wy, seeds = heldout_world(attr, size, args.n_world, "mixed")
        ox, oy, _ = heldout_world(attr, size, args.n_oracle, "mixed", ORACLE_SEED_OFFSET)
        row = {"seeds": [seeds[0], seeds[-1]],
               "oracle_matrix": gains(apply_global_matrix(fit_global_matrix(ox, oy), wx), wy, wx)}
        rgb = to_uint8(wx)  # [N, H, W, 3] uint8: what a photo gives the pipeline
        for folder in args.models:
            bundle = Path(folder) / attr
            if not is_bundle(bundle):
                row[folder] = None
                continue
            pipe = EditPipeline.from_pretrained(bundle)
            outs = [pipe.edit_array(np.ascontiguousarray(img), 1.0).image for img in rgb]
            out = torch.stack([torch.from_numpy(o).permute(2, 0, 1).float() / 127.5 - 1 for o in outs])
            row[folder] = gains(out, wy, wx)
            row[folder]["resolution"] = json.loads((bundle / "config.json").read_text())["resolution"]
        results[attr] = row
        cells = [f"{attr:<12} (b) {row['oracle_matrix']['psnr_gain_db']:+6.2f} dB"]
        for folder in args.models:
            r = row[folder]
            cells.append(f"{folder}: " + ("-" if r is None else
                                         f"{r['psnr_gain_db']:+6.2f} dB (SSIM {r['ssim_gain']:+.3f}) "
                                         f"@{'x'.join(map(str, r['resolution']))}"))
        print(" | ".join(cells), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"size": list(size), "n_world": args.n_world,
                                               "n_oracle": args.n_oracle, "results": results}, indent=1))


if __name__ == "__main__":
    main()
