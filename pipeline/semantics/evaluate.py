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
4. Baselines on the same world scenes (ARCHITECTURE.md, "Measuring edits"):
   (a) `gan_matrix`: one global 3x4 colour matrix least-squares fitted on GAN pairs of
       the translator's own training latents at its s = 1 (a = a_max) — what the GAN edit
       carries as a global change (needs the GAN);
   (b) `oracle_matrix`: the same fitted on true world pairs of other scenes;
   (c) `oracle_translator` (only with `oracle_translator=True`, minutes): the same
       architecture and training settings trained on those true world pairs — the
       ceiling of the network and its training.
   Ratios: `gan_edit_fidelity` = (a) / (b) gains; `translator_locality_db` = translator
   gain - (a); `vs_oracle_matrix_db` = translator - (b); `of_oracle_translator` =
   translator / (c).
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
    predictor_path: str | None = None  # its weights (classifier folder, places365 weights folder)
    batch: int = 16  # images per network call
    world_condition: str = "mixed"  # condition preset the world scenes are drawn under
    n_fit: int = 256  # GAN pairs (training latents, a = a_max) the global matrix (a) is fitted on
    n_oracle: int = 512  # true world pairs of other scenes for the oracle matrix (b) and translator (c)
    oracle_translator: bool = False  # (c): train the bundle's architecture on true world pairs (minutes)
    oracle_out: str | None = None  # also save (c) there as a bundle (e.g. to edit real photos with the ceiling)


# True world pairs for the oracle baselines come from scenes of their own seed range:
# held-out from the GAN (>= 1e9) and disjoint from the evaluation scenes.
ORACLE_SEED_OFFSET = 50_000_000


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


def attribute_coverage(predictor, fakes: torch.Tensor, reals: torch.Tensor) -> dict:
    """How often a generator makes each attribute, beside the real images it learned from:
    per predictor output, the mean score of fakes and reals and, for a probability, the
    share of each scoring > 0.5 and their ratio (`coverage`: 1 = as often as the reals,
    0.25 = a quarter as often). A GAN that rarely makes an attribute gives its boundary
    little to move along, and its pairs little of the attribute to teach."""
    f, r = predictor.score(fakes), predictor.score(reals)
    is_prob = getattr(predictor, "is_prob", None)
    out = {}
    for k, name in enumerate(predictor.attributes):
        row = {"mean_fake": _r(np.mean(f[name])), "mean_real": _r(np.mean(r[name]))}
        if is_prob is None or is_prob[k]:
            hf, hr = float(np.mean(f[name] > 0.5)), float(np.mean(r[name] > 0.5))
            row.update(share_fake=_r(hf), share_real=_r(hr), coverage=_r(hf / hr) if hr > 0 else None)
        out[name] = row
    return out


SCENE_GROUPS = ("night", "fog", "other")


def scene_groups(seeds, condition: str) -> list[str]:
    """Each held-out world scene's kind by its true attributes: night (night > 0.5), fog
    (foggy > 0.5, not night) or other. The world's sunny, overcast and golden_hour re-renders
    also clear night and fog, so their figures mix "more sun" with "night to day"."""
    from pipeline import world

    kinds = []
    for seed in seeds:
        a = world.sample_scene(seed, condition).attributes()
        kinds.append("night" if a["night"] > 0.5 else "fog" if a["foggy"] > 0.5 else "other")
    return kinds


def gains_by_group(out: torch.Tensor, target: torch.Tensor, inp: torch.Tensor, groups: list[str]) -> dict:
    """{group: {n, psnr_gain_db}} over the scenes of each group present (per-image gains, so
    the n-weighted mean of the groups' is the whole set's)."""
    res = {}
    for g in SCENE_GROUPS:
        idx = torch.tensor([k == g for k in groups])
        if idx.any():
            r = gains(out[idx], target[idx], inp[idx])
            res[g] = {"n": r["n"], "psnr_gain_db": r["psnr_gain_db"]}
    return res


def world_skip_reason(attribute: str) -> str | None:
    """Why the world cannot measure `attribute` (None when it can: one of the world's own)."""
    from pipeline import world

    if attribute in world.ATTRIBUTES:
        return None
    return (f"'{attribute}' is not one of the world's attributes ({', '.join(world.ATTRIBUTES)}), "
            "so there is no true re-render to measure it against")


def heldout_world(attribute: str, size: tuple[int, int], n: int, condition: str,
                  offset: int = 0) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """(input, true re-render with attribute = 1, seeds) for n held-out scenes where it is < 0.5,
    from seed world.HELD_OUT_SEED_START + offset on."""
    from pipeline import world

    xs, ys, seeds = [], [], []
    first = seed = world.HELD_OUT_SEED_START + offset
    while len(seeds) < n:
        if seed - first > 50 * n:
            raise UserError(f"found only {len(seeds)} held-out world scenes with '{attribute}' < 0.5 in {50 * n} seeds")
        params = world.sample_scene(seed, condition)
        if params.attributes().get(attribute, 1.0) < 0.5:
            xs.append(from_uint8(world.render(params, size).image))
            ys.append(from_uint8(world.rerender(params, attribute, 1.0, size).image))
            seeds.append(seed)
        seed += 1
    return torch.stack(xs), torch.stack(ys), seeds


def fit_global_matrix(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The 3x4 colour matrix M minimising ||M [x; 1] - y||^2 over all pixels of all pairs."""
    X = torch.cat([x.permute(0, 2, 3, 1).reshape(-1, 3), torch.ones(x.numel() // 3, 1)], dim=1).double()
    Y = y.permute(0, 2, 3, 1).reshape(-1, 3).double()
    return torch.linalg.lstsq(X, Y).solution.T.float()  # [3, 4]


def apply_global_matrix(M: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return (torch.einsum("ij,njhw->nihw", M[:, :3], x) + M[:, 3, None, None]).clamp(-1, 1)


def gan_fit_pairs(G, boundary, bundle_cfg: dict, n: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """GAN pairs of the translator's training latents (pairs seed 0 on) at a = a_max, its s = 1."""
    from pipeline.semantics.pairs import render_pairs

    prov = bundle_cfg.get("provenance", {})
    a_max = float(bundle_cfg["strength_range"][1])
    xs, ys = [], []
    for start in range(0, n, batch):
        seeds = list(range(start, min(n, start + batch)))
        x, y = render_pairs(G, boundary, seeds, torch.full((len(seeds),), a_max),
                            prov.get("truncation_psi", 0.8), prov.get("noise_mode", "const"))
        xs.append(x.cpu()), ys.append(y.cpu())
    return torch.cat(xs), torch.cat(ys)


class _WorldPairs(torch.utils.data.Dataset):
    """True world pairs (x, y, a_max) as a translator training set."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, a_max: float):
        self.x, self.y, self.a = x, y, a_max

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.x[i], self.y[i], self.a


def train_oracle_translator(bundle_cfg: dict, x: torch.Tensor, y: torch.Tensor, device) -> torch.nn.Module:
    """The bundle's architecture and training settings, trained on true world pairs (baseline c)."""
    import tempfile

    from translators.networks import TranslatorConfig
    from translators.training import TrainTranslatorConfig, train_translator

    training = bundle_cfg.get("training") or {}
    settings = dict(training.get("config") or {"steps": int(training.get("steps", TrainTranslatorConfig.steps))})
    settings.update(log_every=10**9, grid_every=10**9, snapshot_every=10**9, workers=0)
    if "crop_scale" in settings:
        settings["crop_scale"] = tuple(settings["crop_scale"])
    cfg = TrainTranslatorConfig(**settings)
    arch = TranslatorConfig.from_dict(dict(bundle_cfg["architecture"]))
    with tempfile.TemporaryDirectory(prefix="oracle-translator-") as run_dir:
        model, _ = train_translator(_WorldPairs(x, y, float(bundle_cfg["strength_range"][1])), arch, cfg, run_dir,
                                    float(bundle_cfg["strength_range"][1]), device=device, log=lambda m: None)
    return model.eval()


def save_oracle_bundle(path: str | Path, oracle: torch.nn.Module, bundle_cfg: dict, figures: dict) -> Path:
    """The oracle translator (c) as a bundle of its own: the evaluated bundle's attribute,
    resolution, strength range and carry, its provenance saying what it was trained on.
    Not a product bundle: the ceiling, e.g. for `bench/bench_real_photos.py --models`."""
    from translators.bundle import save_bundle

    cfg = {k: bundle_cfg[k] for k in ("attribute", "resolution", "strength_range", "edit") if k in bundle_cfg}
    cfg["provenance"] = {"oracle_translator": True, "trained_on": "true world pairs (pipeline.world re-renders)",
                         "n_train": figures["n_train"], "seeds": figures["seeds"],
                         "training": bundle_cfg.get("training") or {}}
    cfg["metrics"] = {"world": {k: v for k, v in figures.items() if k not in ("n_train", "seeds")}}
    return save_bundle(path, oracle, cfg)


def baseline_ratios(translator_gain: float | None, baselines: dict) -> dict:
    """The ratios that say where the attribute is lost (None where a figure is missing)."""
    def gain(name):
        g = baselines.get(name)
        return g.get("psnr_gain_db") if isinstance(g, dict) else None

    a, b, c, t = gain("gan_matrix"), gain("oracle_matrix"), gain("oracle_translator"), translator_gain
    return {
        # a ratio only where (b) measures a change a colour matrix can carry at all
        "gan_edit_fidelity": _r(a / b) if a is not None and b is not None and b > 0.1 else None,
        "translator_locality_db": _r(t - a) if t is not None and a is not None else None,
        "vs_oracle_matrix_db": _r(t - b) if t is not None and b is not None else None,
        "of_oracle_translator": _r(t / c) if t is not None and c else None,
    }


def evaluate_baselines(model, bundle_cfg: dict, cfg: EvalConfig, wx: torch.Tensor, wy: torch.Tensor,
                       translator_gain: float, G=None, boundary=None, device="cpu",
                       groups: list[str] | None = None) -> dict:
    """(a), (b), (c) of the module docstring on the world scenes (wx, wy), and their ratios."""
    attribute, size = bundle_cfg["attribute"], tuple(bundle_cfg["resolution"])
    out: dict = {"gan_matrix": None, "oracle_matrix": None, "oracle_translator": None}
    if G is not None:
        gx, gy = gan_fit_pairs(G, boundary, bundle_cfg, cfg.n_fit, cfg.batch)
        out["gan_matrix"] = gains(apply_global_matrix(fit_global_matrix(gx, gy), wx), wy, wx)
        out["gan_matrix"]["n_fit"] = cfg.n_fit
    ox, oy, oseeds = heldout_world(attribute, size, cfg.n_oracle, cfg.world_condition, ORACLE_SEED_OFFSET)
    out["oracle_matrix"] = gains(apply_global_matrix(fit_global_matrix(ox, oy), wx), wy, wx)
    out["oracle_matrix"].update(n_fit=cfg.n_oracle, seeds=[oseeds[0], oseeds[-1]])
    if cfg.oracle_translator or cfg.oracle_out:
        oracle = train_oracle_translator(bundle_cfg, ox, oy, device)
        oout = translate(oracle, wx, 1.0, cfg.batch, device)
        out["oracle_translator"] = gains(oout, wy, wx)
        out["oracle_translator"].update(n_train=cfg.n_oracle, seeds=[oseeds[0], oseeds[-1]])
        if groups is not None:
            out["oracle_translator"]["by_scene"] = gains_by_group(oout, wy, wx, groups)
        if cfg.oracle_out:
            save_oracle_bundle(cfg.oracle_out, oracle, bundle_cfg, out["oracle_translator"])
    out.update(baseline_ratios(translator_gain, out))
    return out


def score_curve(model, predictor, attribute: str, x: torch.Tensor, strengths, batch: int, device,
                outs: dict | None = None) -> list[float]:
    """The predictor's mean score of the translator's output at each strength (`outs`: outputs
    already made, by strength)."""
    outs = outs or {}
    return [_r(np.mean(predictor.score(outs[s] if s in outs else translate(model, x, float(s), batch, device))[attribute]))
            for s in strengths]


def is_increasing(values: list[float]) -> bool:
    return all(b > a for a, b in zip(values, values[1:]))


def evaluate_translator(model, bundle_cfg: dict, cfg: EvalConfig, G=None, boundary=None, device="cpu") -> dict:
    """All figures as one JSON-friendly dict; held-out pairs only when G and boundary are given."""
    from pipeline.progress import progress_bar
    from pipeline.semantics.predictors import predictor_from_args

    attribute = bundle_cfg["attribute"]
    size = tuple(bundle_cfg["resolution"])
    a_max = float(bundle_cfg["strength_range"][1])
    predictor = predictor_from_args(cfg.predictor, cfg.predictor_path)
    if attribute not in predictor.attributes:
        raise UserError(f"predictor '{cfg.predictor}' does not score '{attribute}'; pick another with --predictor")
    no_world = world_skip_reason(attribute)
    if no_world and G is None:
        raise UserError(f"{no_world}; give --gan and --boundary to measure it on held-out GAN pairs")
    if no_world and (cfg.oracle_translator or cfg.oracle_out):
        raise UserError(f"{no_world}: --oracle-translator / --oracle-out need the world's true pairs")
    result: dict = {"attribute": attribute, "predictor": cfg.predictor, "strengths": list(cfg.strengths)}
    curves = {}
    bar = progress_bar(total=4, desc=f"eval {attribute}", unit="part")  # pairs, world, baselines, curve
    # 1. held-out GAN pairs
    if G is not None:
        x, y, a = heldout_gan_pairs(G, boundary, bundle_cfg, cfg.n_pairs, cfg.batch)
        out = translate(model, x, a / a_max, cfg.batch, device)
        result["heldout_pairs"] = gains(out, y, x)
        curves["heldout_pairs"] = score_curve(model, predictor, attribute, x, cfg.strengths, cfg.batch, device)
    else:
        result["heldout_pairs"] = None
    bar.update()
    if no_world:  # a user's own attribute: the held-out pairs are all there is to measure
        bar.close()
        result.update(world=None, world_skipped=no_world,
                      baselines={"gan_matrix": None, "oracle_matrix": None, "oracle_translator": None,
                                 **baseline_ratios(None, {})},
                      score_vs_strength=curves, strength_monotonic=all(is_increasing(c) for c in curves.values()))
        return result
    # 2. held-out world scenes against the true re-render
    wx, wy, seeds = heldout_world(attribute, size, cfg.n_world, cfg.world_condition)
    groups = scene_groups(seeds, cfg.world_condition)
    outs = {s: translate(model, wx, float(s), cfg.batch, device) for s in {*cfg.strengths, 1.0}}  # each once
    world = gains(outs[1.0], wy, wx)
    world["by_scene"] = gains_by_group(outs[1.0], wy, wx, groups)
    per_s = {s: gains(outs[s], wy, wx)["psnr_gain_db"] for s in cfg.strengths}
    best = max(per_s, key=per_s.get)
    world.update(strength=1.0, seeds=[seeds[0], seeds[-1]], psnr_gain_db_by_strength=per_s,
                 best_strength=best, psnr_gain_db_at_best=per_s[best])
    result["world"] = world
    bar.update()
    result["baselines"] = evaluate_baselines(model, bundle_cfg, cfg, wx, wy, world["psnr_gain_db"], G, boundary, device,
                                             groups)
    bar.update()
    curves["world"] = score_curve(model, predictor, attribute, wx, cfg.strengths, cfg.batch, device, outs)
    bar.update()
    bar.close()
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
    merged = _merge(old, new)
    if merged.get("heldout_pairs") is not None:
        merged.pop("heldout_pairs_skipped", None)  # the pairs figure shown is a measured one
    curves = merged.get("score_vs_strength") or {}
    if curves:
        merged["strength_monotonic"] = all(is_increasing(c) for c in curves.values())
    if isinstance(merged.get("baselines"), dict):  # ratios of the figures kept, old or new
        merged["baselines"].update(baseline_ratios((merged.get("world") or {}).get("psnr_gain_db"),
                                                   merged["baselines"]))
    return merged


def _merge(old: dict, new: dict) -> dict:
    merged = dict(old)
    for key, value in new.items():
        if value is None and old.get(key) is not None:
            continue
        if isinstance(value, dict) and isinstance(old.get(key), dict) and key in ("score_vs_strength", "baselines"):
            merged[key] = _merge(old[key], value)
        else:
            merged[key] = value
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
        if not path:  # installed bundles keep the sha256 only (no machine's paths)
            return None, None, f"the bundle records no {key} file path; pass --gan and --boundary"
        if not Path(path).is_file():
            return None, None, f"the bundle's {key} file {path!r} is not available; pass --gan and --boundary"
        if file_sha256(path) != prov.get(f"{key}_sha256"):
            return None, None, f"{path} changed since training (sha256 differs); pass --gan and --boundary"
    return prov["gan_path"], prov["boundary_path"], None


def _r(v) -> float:
    return round(float(v), 4)
