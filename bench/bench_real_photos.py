"""Edits on real photos: structure kept, and colour moved toward real photos of the condition.

For each translator bundle, every day photo of ../shared/realphotos/ (night ones left
out), reduced to ~640 px on its long side, is edited at s = 1 and measured:

- structure: the SSIM structure term s_xy / (s_x s_y) between input and output grey
  images, in 7x7 windows where the input has texture (local variance > 4 on 0-255),
  averaged. Tone-invariant: a global darkening keeps it near 1, a 3-px shift drops it.
- colour (night, foggy, snowy, golden_hour): the distance of the edited set's pooled
  Lab pixels to those of the real photos of that condition
  (../shared/realphotos-conditions/: night, fog, snow, dusk), as the sum of the 1-D
  Wasserstein distances of L, a and b; the figure is its fall from "do nothing" (the
  unedited day photos). Beside it, Reinhard's per-photo colour transfer (Lab mean and
  std matched to the real set), a 2001 baseline that knows nothing of lamps or windows.
- patch SWD at 128x256 (gan/swd.py: Laplacian pyramid, 7x7 patches, x1e3) between the
  edited set and the real photos of the condition (cycled to the same count), beside
  the same for "do nothing" and Reinhard: texture and local contrast, not only colour.
- the same Lab distance by band (top, middle, bottom third of every photo, each against
  the same band of the real photos): street photos share a layout (sky above, road
  below), so this says *where* the colour is off, which the pooled figure cannot: a
  night edit that keeps the day sky bright can match real nights' pooled light (their
  lit windows and lamps) while its sky stays far from theirs (docs/BENCHMARKS.md #12
  part 14: top third 17.1 Lab units from real nights' against 9.6-12.1 for nights that
  darken the sky).

Writes a contact sheet (input | each attribute) with --sheet. Skips cleanly when the
photo folders are absent. Run from the repo root:

    python bench/bench_real_photos.py --models /tmp/run/models --sheet /tmp/real_photos_sheet.jpg  # not in the repo
    python bench/bench_real_photos.py --models /tmp/run/models --eps 0.01   # the carry's smoothing vs structure
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

PHOTOS = Path("../shared/realphotos")
CONDITIONS = Path("../shared/realphotos-conditions")
CONDITION_OF = {"night": "night", "foggy": "fog", "snowy": "snow", "golden_hour": "dusk"}


def load_rgb(path: Path, long_side: int = 640) -> np.ndarray:
    from PIL import Image

    img = Image.open(path).convert("RGB")
    scale = long_side / max(img.size)
    if scale < 1:
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.BILINEAR)
    return np.asarray(img)


def day_photos() -> list[np.ndarray]:
    """The day photos of PHOTOS (night ones left out), ~640 px: the inputs every real-photo figure edits."""
    with open(PHOTOS / "MANIFEST.tsv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [load_rgb(PHOTOS / r["filename"]) for r in rows if "NIGHT" not in r["description"]]


def condition_photos(cond: str) -> list[np.ndarray]:
    """The real photos of one condition of CONDITIONS (night, fog, snow, dusk, ...), ~640 px."""
    with open(CONDITIONS / "MANIFEST.tsv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [load_rgb(CONDITIONS / r["filename"]) for r in rows if r["condition"] == cond]


def _box(a: np.ndarray, k: int = 7) -> np.ndarray:
    """Mean over k x k windows (valid part only), by integral images."""
    c = np.pad(a, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    return (c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]) / (k * k)


def structure_term(inp: np.ndarray, out: np.ndarray, min_var: float = 4.0) -> float:
    """Mean of s_xy / (s_x s_y) over 7x7 windows where the input's grey variance > min_var."""
    gx = inp.astype(np.float64) @ [0.299, 0.587, 0.114]
    gy = out.astype(np.float64) @ [0.299, 0.587, 0.114]
    mx, my = _box(gx), _box(gy)
    vx, vy = _box(gx * gx) - mx * mx, _box(gy * gy) - my * my
    cxy = _box(gx * gy) - mx * my
    mask = vx > min_var
    s = cxy[mask] / np.sqrt(np.maximum(vx[mask], 1e-12) * np.maximum(vy[mask], 1e-12))
    s[vy[mask] <= 1e-6] = 0.0  # a flat output window keeps no structure
    return float(s.mean())


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB uint8 [..., 3] -> CIE Lab (D65) float [..., 3]."""
    c = rgb.astype(np.float64) / 255.0
    c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = c @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    xyz /= [0.95047, 1.0, 1.08883]
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], -1)
    xyz = np.where(f > 6 / 29, f ** 3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * [0.95047, 1.0, 1.08883]
    c = xyz @ np.array([[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570]]).T
    c = np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.clip(c, 0, None) ** (1 / 2.4) - 0.055)
    return (np.clip(c, 0, 1) * 255 + 0.5).astype(np.uint8)


def pooled_lab(images: list[np.ndarray], per_image: int = 20000, seed: int = 0) -> np.ndarray:
    """The same number of random pixels from every image, in Lab [N, 3]."""
    rng = np.random.default_rng(seed)
    out = []
    for img in images:
        flat = img.reshape(-1, 3)
        out.append(rgb_to_lab(flat[rng.integers(0, len(flat), per_image)]))
    return np.concatenate(out)


def lab_distance(a: np.ndarray, b: np.ndarray, q: int = 1000) -> float:
    """Sum over L, a, b of the 1-D Wasserstein distance (mean |quantile difference|)."""
    qs = (np.arange(q) + 0.5) / q
    return float(sum(np.abs(np.quantile(a[:, c], qs) - np.quantile(b[:, c], qs)).mean() for c in range(3)))


def bands(images: list[np.ndarray], k: int = 3) -> list[list[np.ndarray]]:
    """The k horizontal bands (top first) of every image: bands(images)[i] = band i of each."""
    return [[im[i * im.shape[0] // k:(i + 1) * im.shape[0] // k] for im in images] for i in range(k)]


def banded_lab_distance(images: list[np.ndarray], real_bands: list[np.ndarray]) -> list[float]:
    """lab_distance band by band against the real photos' pooled band pixels (pooled_lab of bands(real))."""
    return [round(lab_distance(pooled_lab(b), t), 3) for b, t in zip(bands(images), real_bands)]


def reinhard(img: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-photo Lab mean/std matched to the pooled target pixels (Reinhard et al. 2001)."""
    lab = rgb_to_lab(img)
    mu, sd = lab.reshape(-1, 3).mean(0), lab.reshape(-1, 3).std(0) + 1e-6
    return lab_to_rgb((lab - mu) / sd * target.std(0) + target.mean(0))


def patch_swd(images: list[np.ndarray], real: list[np.ndarray], size: tuple[int, int] = (128, 256)) -> float:
    """SWD (x1e3, mean over pyramid levels) between two photo sets resized to H x W = size;
    the real set is cycled to the first set's count (swd compares sets of one shape)."""
    import torch
    from PIL import Image

    from gan.swd import SWDConfig, swd

    def batch(imgs):
        arr = np.stack([np.asarray(Image.fromarray(np.asarray(i)).resize(size[::-1], Image.BILINEAR)) for i in imgs])
        return torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 127.5 - 1

    cycled = [real[k % len(real)] for k in range(len(images))]
    return swd(batch(images), batch(cycled), SWDConfig(patches_per_image=256))["swd"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", required=True, help="folder of translator bundles (<attribute>/)")
    p.add_argument("--attributes", default="night,sunny,foggy,snowy,golden_hour,overcast")
    p.add_argument("--sheet", help="write a contact sheet (input | each attribute) here")
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--config", default=None, help="preset whose edit: section carries the edit, as "
                   "`photoedit --attribute --config` does (default: none, as `photoedit --attribute` without "
                   "--config: each bundle's own carry eps, else EditConfig's defaults; figures before 2026-11-27 "
                   "23:30 UTC were taken with --config quickstart)")
    p.add_argument("--radius", type=int, help="override the carry's guided-filter radius")
    p.add_argument("--eps", type=float, help="override the carry's guided-filter eps")
    args = p.parse_args()
    if not PHOTOS.is_dir():
        print(f"skipped: {PHOTOS} not found (run from the repo root with the shared photos beside it)")
        return
    from pipeline.config import load_section
    from translators.inference import EditConfig, EditPipeline

    sets = {f"edit.{k}": v for k, v in (("radius", args.radius), ("eps", args.eps)) if v is not None}
    edit = load_section(EditConfig, "edit", args.config, sets)

    inputs = day_photos()
    results, edited_all = {}, {}
    attrs = [a for a in args.attributes.split(",") if (Path(args.models) / a / "config.json").is_file()]
    for attr in attrs:
        pipe = EditPipeline.from_pretrained(Path(args.models) / attr, config=edit)
        edited = [pipe(img, 1.0).image for img in inputs]
        edited_all[attr] = edited
        r = {"n_photos": len(inputs), "radius": edit.radius, "eps": pipe.carry_eps, "structure": round(float(np.mean([structure_term(i, o) for i, o in
                                                                        zip(inputs, edited)])), 4)}
        cond = CONDITION_OF.get(attr)
        if cond:
            real = condition_photos(cond)
            target = pooled_lab(real)
            d0 = lab_distance(pooled_lab(inputs), target)
            d1 = lab_distance(pooled_lab(edited), target)
            transferred = [reinhard(i, target) for i in inputs]
            dr = lab_distance(pooled_lab(transferred), target)
            r.update(patch_swd_do_nothing=round(patch_swd(inputs, real), 2), patch_swd_edited=round(patch_swd(edited, real), 2),
                     patch_swd_reinhard=round(patch_swd(transferred, real), 2))
            r.update(condition=cond, n_real=len(real), lab_w1_do_nothing=round(d0, 3), lab_w1_edited=round(d1, 3),
                     lab_w1_fall=round(1 - d1 / d0, 4), lab_w1_reinhard=round(dr, 3),
                     reinhard_fall=round(1 - dr / d0, 4))
            real_bands = [pooled_lab(b) for b in bands(real)]
            b0, b1, br = (banded_lab_distance(imgs, real_bands) for imgs in (inputs, edited, transferred))
            r.update(lab_w1_bands_do_nothing=b0, lab_w1_bands_edited=b1, lab_w1_bands_reinhard=br,
                     lab_w1_bands_fall=round(1 - sum(b1) / sum(b0), 4), reinhard_bands_fall=round(1 - sum(br) / sum(b0), 4))
        results[attr] = r
        print(attr, json.dumps(r), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    if args.sheet and attrs:
        from PIL import Image

        h = 120
        tiles = []
        for k, img in enumerate(inputs):
            row = [img] + [edited_all[a][k] for a in attrs]
            w = round(img.shape[1] * h / img.shape[0])
            tiles.append(np.concatenate([np.asarray(Image.fromarray(np.asarray(t)).resize((w, h))) for t in row], 1))
        width = max(t.shape[1] for t in tiles)
        sheet = np.concatenate([np.pad(t, ((0, 2), (0, width - t.shape[1]), (0, 0)), constant_values=255)
                                for t in tiles])
        Image.fromarray(sheet).save(args.sheet, quality=80)
        print(f"contact sheet: {args.sheet} (columns: input | {' | '.join(attrs)})")


if __name__ == "__main__":
    main()
