"""Translator evaluation: does the net beat "do nothing", and does its slider move the attribute?

1. Held-out GAN pairs (latent seeds >= HELD_OUT_SEED_START, never trained on): PSNR/SSIM of
   the translator output against the GAN's edited image, minus the same figure for the
   unedited input ("do nothing"). The translator runs at s = a / a_max for each pair.
2. Held-out world scenes (seeds >= world.HELD_OUT_SEED_START, streets the GAN never saw)
   whose attribute is low (< 0.5): the truth is the same street re-rendered with the
   attribute set to 1 (`pipeline.world`); the translator runs at s = 1. Same gains.
   The gain at the best strength of the grid is reported beside it, marked as such.
3. Predictor score of the attribute at s = 0, 0.25, ..., 1 on both input sets;
   `strength_monotonic` is true when the mean score rises at every step on both.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gan.images import from_uint8
from pipeline.errors import UserError
from translators.metrics import psnr, ssim


@dataclass
class EvalConfig:
    n_pairs: int = 64  # held-out GAN pairs
    n_world: int = 32  # held-out world scenes (with the attribute below 0.5)
    strengths: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)  # slider values for the score curve
    predictor: str = "photometric"  # scores the attribute for the monotonicity check
    batch: int = 16  # images per network call
    world_condition: str = "mixed"  # condition preset the world scenes are drawn under


def gains(out: torch.Tensor, target: torch.Tensor, inp: torch.Tensor) -> dict:
    """PSNR/SSIM of `out` and of "do nothing" (`inp`) against `target`, and their gains."""
    p_out, p_in = psnr(out, target), psnr(inp, target)
    s_out, s_in = ssim(out, target), ssim(inp, target)
    return {
        "n": int(len(out)),
        "psnr_db": _r(p_out.mean()),
        "psnr_do_nothing_db": _r(p_in.mean()),
        "psnr_gain_db": _r((p_out - p_in).mean()),
        "ssim": _r(s_out.mean()),
        "ssim_do_nothing": _r(s_in.mean()),
        "ssim_gain": _r((s_out - s_in).mean()),
    }


@torch.no_grad()
def translate(model, x: torch.Tensor, s: torch.Tensor | float, batch: int, device) -> torch.Tensor:
    s = torch.as_tensor(s, dtype=torch.float32).expand(len(x)) if not torch.is_tensor(s) or s.ndim == 0 else s
    outs = [model(x[i:i + batch].to(device), s[i:i + batch].to(device)).cpu() for i in range(0, len(x), batch)]
    return torch.cat(outs)


def heldout_gan_pairs(G, boundary, bundle_cfg: dict, n: int, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x, y, a) for n held-out latents with strengths from the bundle's training range."""
    from pipeline.config import HELD_OUT_SEED_START
    from pipeline.semantics.pairs import pair_strengths, render_pairs

    xs, ys, As = [], [], []
    for start in range(0, n, batch):
        idx = list(range(start, min(n, start + batch)))
        seeds = [HELD_OUT_SEED_START + i for i in idx]
        a = pair_strengths(HELD_OUT_SEED_START, idx, bundle_cfg["strength_range"])
        prov = bundle_cfg.get("provenance", {})  # the same truncation and noise as the training pairs
        x, y = render_pairs(G, boundary, seeds, a, prov.get("truncation_psi", 0.8), prov.get("noise_mode", "const"))
        xs.append(x.cpu()), ys.append(y.cpu()), As.append(a)
    return torch.cat(xs), torch.cat(ys), torch.cat(As)


def heldout_world(attribute: str, size: tuple[int, int], n: int, condition: str) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """(input, true re-render with attribute = 1, seeds) for n held-out scenes where it is < 0.5."""
    from pipeline import world

    xs, ys, seeds = [], [], []
    seed = world.HELD_OUT_SEED_START
    while len(seeds) < n:
        if seed - world.HELD_OUT_SEED_START > 50 * n:
            raise UserError(f"found only {len(seeds)} held-out world scenes with '{attribute}' < 0.5 in {50 * n} seeds")
        params = world.sample_scene(seed, condition)
        if params.attributes().get(attribute, 1.0) < 0.5:
            xs.append(from_uint8(world.render(params, size).image))
            ys.append(from_uint8(world.rerender(params, attribute, 1.0, size).image))
            seeds.append(seed)
        seed += 1
    return torch.stack(xs), torch.stack(ys), seeds


def score_curve(model, predictor, attribute: str, x: torch.Tensor, strengths, batch: int, device) -> list[float]:
    curve = []
    for s in strengths:
        out = translate(model, x, float(s), batch, device)
        curve.append(_r(np.mean(predictor.score(out)[attribute])))
    return curve


def is_increasing(values: list[float]) -> bool:
    return all(b > a for a, b in zip(values, values[1:]))


def evaluate_translator(model, bundle_cfg: dict, cfg: EvalConfig, G=None, boundary=None, device="cpu") -> dict:
    """All figures as one JSON-friendly dict; held-out pairs only when G and boundary are given."""
    from pipeline.semantics.predictors import get_predictor

    attribute = bundle_cfg["attribute"]
    size = tuple(bundle_cfg["resolution"])
    a_max = float(bundle_cfg["strength_range"][1])
    predictor = get_predictor(cfg.predictor)
    if attribute not in predictor.attributes:
        raise UserError(f"predictor '{cfg.predictor}' does not score '{attribute}'; pick another with --predictor")
    result: dict = {"attribute": attribute, "predictor": cfg.predictor, "strengths": list(cfg.strengths)}
    curves = {}
    # 1. held-out GAN pairs
    if G is not None:
        x, y, a = heldout_gan_pairs(G, boundary, bundle_cfg, cfg.n_pairs, cfg.batch)
        out = translate(model, x, a / a_max, cfg.batch, device)
        result["heldout_pairs"] = gains(out, y, x)
        curves["heldout_pairs"] = score_curve(model, predictor, attribute, x, cfg.strengths, cfg.batch, device)
    else:
        result["heldout_pairs"] = None
    # 2. held-out world scenes against the true re-render
    wx, wy, seeds = heldout_world(attribute, size, cfg.n_world, cfg.world_condition)
    world = gains(translate(model, wx, 1.0, cfg.batch, device), wy, wx)
    per_s = {s: gains(translate(model, wx, float(s), cfg.batch, device), wy, wx)["psnr_gain_db"] for s in cfg.strengths}
    best = max(per_s, key=per_s.get)
    world.update(strength=1.0, seeds=[seeds[0], seeds[-1]], psnr_gain_db_by_strength=per_s,
                 best_strength=best, psnr_gain_db_at_best=per_s[best])
    result["world"] = world
    curves["world"] = score_curve(model, predictor, attribute, wx, cfg.strengths, cfg.batch, device)
    # 3. the slider moves the attribute monotonically
    result["score_vs_strength"] = curves
    result["strength_monotonic"] = all(is_increasing(c) for c in curves.values())
    return result


def run_evaluation(bundle_path: str | Path, cfg: EvalConfig, gan: str | None = None, boundary_path: str | None = None,
                   device: str = "cpu", write: bool = False) -> dict:
    """Load the bundle (and the GAN named by the flags or its provenance) and evaluate; with
    `write`, merge the figures into the bundle's config.json (`merge_metrics`: nothing measured
    before is lost)."""
    from translators.bundle import BundleError, load_bundle, write_bundle_config

    try:
        model, bundle_cfg = load_bundle(bundle_path, device)
    except BundleError as e:
        raise UserError(str(e)) from None
    G = boundary = None
    gan, boundary_path, why_not = _gan_sources(bundle_cfg, gan, boundary_path)
    if gan and boundary_path:
        from pipeline.semantics.pairs import load_gan_and_boundary

        G, boundary, prov = load_gan_and_boundary(gan, boundary_path, device)
        if prov["attribute"] != bundle_cfg["attribute"]:
            raise UserError(f"{boundary_path}: boundary is for '{prov['attribute']}', the bundle for '{bundle_cfg['attribute']}'")
    result = evaluate_translator(model, bundle_cfg, cfg, G, boundary, device)
    result["bundle"] = str(bundle_path)
    if why_not:
        result["heldout_pairs_skipped"] = why_not
    if write:
        new = {k: v for k, v in result.items() if k != "bundle"}
        bundle_cfg["metrics"] = merge_metrics(bundle_cfg.get("metrics") or {}, new)
        write_bundle_config(bundle_path, bundle_cfg)
    return result


def merge_metrics(old: dict, new: dict) -> dict:
    """`old` updated by `new`, never losing a measured figure: a group `new` could not
    measure (None, e.g. held-out pairs without the GAN) keeps its old value, dicts merge key
    by key (a score curve measured before stays beside the new one), and
    `strength_monotonic` is recomputed over all the curves kept."""
    merged = dict(old)
    for key, value in new.items():
        if value is None and old.get(key) is not None:
            continue
        if isinstance(value, dict) and isinstance(old.get(key), dict) and key == "score_vs_strength":
            merged[key] = {**old[key], **value}
        else:
            merged[key] = value
    if merged.get("heldout_pairs") is not None:
        merged.pop("heldout_pairs_skipped", None)  # the pairs figure shown is a measured one
    curves = merged.get("score_vs_strength") or {}
    if curves:
        merged["strength_monotonic"] = all(is_increasing(c) for c in curves.values())
    return merged


def _gan_sources(bundle_cfg: dict, gan, boundary_path):
    """(gan, boundary, reason if none): flags win; otherwise the bundle's provenance paths,
    if those files still exist with the recorded sha256 (a changed file would measure a
    different edit than the one the translator learned)."""
    if gan or boundary_path:
        if not (gan and boundary_path):
            raise UserError("give both --gan and --boundary (or neither, to use the bundle's provenance)")
        return gan, boundary_path, None
    from gan.checkpoint import file_sha256

    prov = bundle_cfg.get("provenance", {})
    for key in ("gan", "boundary"):
        path = prov.get(f"{key}_path")
        if not path or not Path(path).is_file():
            return None, None, f"the bundle's {key} file {path!r} is not available; pass --gan and --boundary"
        if file_sha256(path) != prov.get(f"{key}_sha256"):
            return None, None, f"{path} changed since training (sha256 differs); pass --gan and --boundary"
    return prov["gan_path"], prov["boundary_path"], None


def _r(v) -> float:
    return round(float(v), 4)
