"""Figures a run leaves for its report: sample grids, curves, pair sheets, before/after.

Each function writes one image file and nothing else; the report embeds them.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gan.images import to_uint8
from pipeline.fileio import atomic_write


def grid(rows: list[np.ndarray], pad: int = 2) -> np.ndarray:
    """rows: list of [N,H,W,3] uint8 (same N, H, W) -> one image, rows stacked."""
    n, h, w, _ = rows[0].shape
    out = np.full((len(rows) * (h + pad) + pad, n * (w + pad) + pad, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for i, im in enumerate(row):
            y, x = pad + r * (h + pad), pad + i * (w + pad)
            out[y:y + h, x:x + w] = im
    return out


def save(arr: np.ndarray, path: Path, scale: int = 1) -> None:
    """Write an image atomically (temp file in the same folder, then rename)."""
    img = Image.fromarray(arr)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG"
    atomic_write(path, lambda f: img.save(f, format=fmt, **({"quality": 92} if fmt == "JPEG" else {})))


def swd_curve(stats_jsonl: Path, png: Path, floor: float | None = None) -> None:
    """SWD over training images seen, from the GAN run's stats.jsonl."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in Path(stats_jsonl).read_text().splitlines() if line.strip()]
    pts = [(r.get("kimg", r.get("images", 0) / 1000), r["swd"]) for r in rows if r.get("swd") is not None]
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    if pts:
        ax.plot(*zip(*pts), marker="o", label="EMA generator vs held-out renders")
    if floor is not None:
        ax.axhline(floor, color="grey", ls="--", label="floor: real vs real")
    ax.set_xlabel("thousands of training images seen")
    ax.set_ylabel("SWD (x1e3)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)


@torch.no_grad()
def pair_sheet(gan_ckpt: Path, boundary_file: Path, png: Path, n: int = 6, strength: float | None = None,
               truncation_psi: float = 0.8) -> None:
    """Top row G(w), bottom row G(w + a n) at the top of the training range."""
    from gan.checkpoint import load_generator
    from pipeline.semantics.boundary import LinearBoundary
    from pipeline.semantics.pairs import render_pairs

    G = load_generator(gan_ckpt).eval()
    b = LinearBoundary.load(boundary_file)
    a = torch.full((n,), 3.0 if strength is None else strength)
    x, y = render_pairs(G, b, list(range(10_000, 10_000 + n)), a, truncation_psi=truncation_psi)
    save(grid([to_uint8(x), to_uint8(y)]), png, scale=2)


@torch.no_grad()
def world_sheet(bundle: Path, attr: str, png: Path, n: int = 6) -> None:
    """Rows: held-out world scene | translator at strength 1 | the true re-render."""
    from pipeline.semantics.evaluate import heldout_world, translate
    from translators.bundle import load_bundle

    model, cfg = load_bundle(bundle)
    x, y, _ = heldout_world(attr, tuple(cfg["resolution"]), n, "mixed")
    out = translate(model.eval(), x, 1.0, n, "cpu")
    save(grid([to_uint8(x), to_uint8(out), to_uint8(y)]), png, scale=2)


@torch.no_grad()
def strength_strip(bundle: Path, attr: str, png: Path, n: int = 3) -> None:
    """Each row one held-out scene; columns strength 0, 0.25, 0.5, 0.75, 1."""
    from pipeline.semantics.evaluate import heldout_world, translate
    from translators.bundle import load_bundle

    model, cfg = load_bundle(bundle)
    x, _, _ = heldout_world(attr, tuple(cfg["resolution"]), n, "mixed")
    cols = [to_uint8(translate(model.eval(), x, s, n, "cpu")) for s in (0.0, 0.25, 0.5, 0.75, 1.0)]
    rows = [np.stack([c[i] for c in cols]) for i in range(n)]
    save(grid(rows), png, scale=2)


def example_scenes(out: Path, n: int, size: tuple[int, int]) -> list[Path]:
    """Street scenes rendered at photo-like size, never seen in training, to show edits on."""
    from pipeline import world

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    conditions = ["overcast", "day", "golden_hour", "fog", "snow", "night"]
    for i in range(n):
        seed = world.HELD_OUT_SEED_START + 500_000 + i
        r = world.render(world.sample_scene(seed, conditions[i % len(conditions)]), size)
        p = out / f"example_{i:02d}.png"
        save(r.image, p)
        paths.append(p)
    return paths


def edit_sheet(jobs, path: Path) -> None:
    """Originals beside their edits (batch jobs whose output exists), for the report."""
    from PIL import ImageOps

    sheet_side_by_side([ImageOps.exif_transpose(Image.open(j.src)).convert("RGB") for j in jobs[:8]],
                       [Image.open(j.dst).convert("RGB") for j in jobs[:8]], path)


def sheet_side_by_side(befores: list[Image.Image], afters: list[Image.Image], path: Path, width: int = 480) -> None:
    rows = []
    for b, a in zip(befores, afters):
        h = max(1, round(b.height * width / b.width))
        pair = np.concatenate([np.asarray(b.resize((width, h))), np.full((h, 4, 3), 255, np.uint8),
                               np.asarray(a.resize((width, h)))], axis=1)
        rows += [pair, np.full((4, pair.shape[1], 3), 255, np.uint8)]
    save(np.concatenate(rows[:-1], axis=0), path)


def dissection_chart(matched: list[np.ndarray], names: list[str], widths: list[int], png: Path,
                     min_iou: float) -> None:
    """GAN Dissection's per-layer summary: for each level, how many units match each class
    (best IoU >= min_iou), as stacked bars; the level's width in the axis label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.stack([np.asarray(m) for m in matched])  # [levels, classes]
    fig, ax = plt.subplots(figsize=(7, 3.4), dpi=100)
    x = np.arange(len(matched))
    bottom = np.zeros(len(matched))
    cmap = plt.get_cmap("tab20")
    for c, name in enumerate(names):
        if counts[:, c].any():
            ax.bar(x, counts[:, c], bottom=bottom, label=name, color=cmap(c % 20))
            bottom += counts[:, c]
    ax.set_xticks(x, [f"level {lv}\n({w} units)" for lv, w in enumerate(widths)], fontsize=8)
    ax.set_ylim(0, max(1.0, float(bottom.max())) * 1.1)
    ax.set_ylabel("units matching the class")
    ax.set_title(f"units whose best class has IoU >= {min_iou:g}", fontsize=9)
    if counts.any():
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    else:
        ax.text(0.5, 0.5, "no unit matches any class", transform=ax.transAxes, ha="center", va="center")
    fig.tight_layout()
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(png, lambda f: fig.savefig(f, format="png"))
    plt.close(fig)


# class id -> colour (cycled past 16), shared by the report's class maps and the serve paint tab
CLASS_PALETTE = np.array([[70, 130, 180], [150, 100, 90], [128, 64, 128], [244, 35, 232], [107, 142, 35],
                          [0, 0, 142], [250, 170, 30], [153, 153, 153], [152, 251, 152], [255, 0, 0],
                          [220, 220, 0], [119, 11, 32], [0, 80, 100], [0, 0, 230], [102, 102, 156],
                          [190, 153, 153]], np.uint8)


def class_colours(labels: np.ndarray) -> np.ndarray:
    """int [..., H, W] class ids -> uint8 [..., H, W, 3]."""
    return CLASS_PALETTE[np.asarray(labels, dtype=np.int64) % len(CLASS_PALETTE)]


@torch.no_grad()
def lse_mask_sheet(gan_ckpt: Path, lse_file: Path, png: Path, n: int = 8, truncation_psi: float = 0.8) -> list[str]:
    """Rows: GAN samples | the LSE's class map | the map over the sample. Returns the class names
    in colour order (for the caption)."""
    from gan.checkpoint import load_generator
    from pipeline.semantics.lse import load_extractor, seed_latents

    G = load_generator(gan_ckpt).eval()
    ext, labels, _ = load_extractor(lse_file)
    ws = G.broadcast(G.mapping(seed_latents(G, range(10_000, 10_000 + n)), truncation_psi))
    img, feats = G.synthesis(ws, noise_mode="const", return_features=True)
    lab = ext(feats).argmax(1).numpy()
    x = to_uint8(img.float().clamp(-1, 1))
    col = class_colours(lab)
    if col.shape[1:3] != x.shape[1:3]:  # an extractor fitted at another size: nearest resize
        col = np.stack([np.asarray(Image.fromarray(c).resize((x.shape[2], x.shape[1]), Image.NEAREST)) for c in col])
    over = (0.5 * x + 0.5 * col).astype(np.uint8)
    save(grid([x, col, over]), png, scale=2)
    return [labels.get(c, str(c)) for c in range(ext.cfg.num_classes)]
