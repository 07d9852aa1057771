"""(c) The default translator's forward pass at 512x512 vs pix2pixHD's default GlobalGenerator.

    python bench/bench_edit_translator.py [--size 512] [--repeats 2]

Same code (translators/networks.py) in two configurations:
  default      TranslatorConfig() as shipped (what `photoedit --attribute` runs)
  pix2pixHD    ngf 64, 4 downsamplings, 9 residual blocks, transposed-conv upsampling,
               channels up to 1024, no strength conditioning (pix2pixHD's defaults)
Batch 1, CPU, torch.inference_mode, best of --repeats after one warm-up. Goal: >= 10x.
Also prints the network time at the working size the edit actually uses for a 4:3
photo with a 256-px bundle (256x352), which is what a user waits for.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_edit_common import best_of  # noqa: E402

PIX2PIXHD = dict(ngf=64, n_downsample=4, n_blocks=9, max_channels=1024, upsample="transposed",
                 residual=False, strength_channel=False, film=False)


def time_forward(cfg: dict, h: int, w: int, repeats: int) -> tuple[float, int]:
    import torch

    from translators.networks import build_translator

    torch.manual_seed(0)
    model = build_translator(cfg).eval()
    x = torch.rand(1, 3, h, w) * 2 - 1
    s = torch.ones(1)
    with torch.inference_mode():
        model(x, s)
        t = best_of(lambda: model(x, s), repeats)
    return t, sum(p.numel() for p in model.parameters())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    import torch

    from translators.networks import TranslatorConfig

    ours, n_ours = time_forward({}, args.size, args.size, args.repeats + 1)
    base, n_base = time_forward(PIX2PIXHD, args.size, args.size, args.repeats)
    work, _ = time_forward({}, 256, 352, args.repeats + 1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; default = {TranslatorConfig()}")
    print(f"pix2pixHD GlobalGenerator {args.size}x{args.size}: {base:.3f} s ({n_base / 1e6:.1f} M params)")
    print(f"default translator       {args.size}x{args.size}: {ours:.3f} s ({n_ours / 1e6:.2f} M params)")
    print(f"speed-up: {base / ours:.1f}x  (goal >= 10x)")
    print(f"default translator at the edit's working size 256x352: {work:.3f} s "
          f"({base / work:.0f}x less than pix2pixHD at {args.size}^2)")


if __name__ == "__main__":
    main()
