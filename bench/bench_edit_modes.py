"""Default (guided) vs --full-res-net (tiled) on one photo: the time ratio.

    python bench/bench_edit_modes.py [--size 1080x1920] [--resolution 64x64]

The bundle is the quickstart translator shape (ngf 16, 3 downsamplings, 4 blocks) with
random weights (cost does not depend on them; their output is noise, so no quality
figure here: tests/test_edit.py compares the modes with known edits).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_edit_common import synthetic_photo  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="1080x1920", help="photo HxW")
    ap.add_argument("--resolution", default="64x64", help="bundle training resolution HxW")
    args = ap.parse_args()
    import torch

    from pipeline.photos.batch import default_torch_threads
    from translators.bundle import save_bundle
    from translators.inference import EditConfig, EditPipeline
    from translators.networks import TranslatorConfig, build_translator

    torch.set_num_threads(default_torch_threads(2))
    torch.manual_seed(0)
    model = build_translator(TranslatorConfig(ngf=16, n_downsample=3, n_blocks=4))
    last = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.out_channels == 3][-1]
    with torch.no_grad():
        last.weight.normal_(0, 0.02)
    h, w = (int(v) for v in args.size.split("x"))
    res = [int(v) for v in args.resolution.split("x")]
    photo = synthetic_photo(h, w)
    with tempfile.TemporaryDirectory() as tmp:
        path = save_bundle(Path(tmp) / "sunny", model, {"attribute": "sunny", "resolution": res,
                                                         "strength_range": [0.0, 3.0]})
        guided = EditPipeline.from_pretrained(path)
        tiled = EditPipeline.from_pretrained(path, config=EditConfig(mode="tiled"))
        guided(photo)  # warm-up
        t0 = time.perf_counter()
        a = guided(photo).image
        t1 = time.perf_counter()
        b = tiled(photo).image
        t2 = time.perf_counter()
    assert a.shape == b.shape == photo.shape
    print(f"photo {w}x{h}, bundle res {res}, torch threads {torch.get_num_threads()}")
    print(f"default (guided carry): {t1 - t0:.3f} s")
    print(f"--full-res-net (tiled): {t2 - t1:.3f} s   -> {(t2 - t1) / (t1 - t0):.1f}x slower")


if __name__ == "__main__":
    main()
