"""Measure a generator: SWD to real images, perceptual path length, attribute linearity (no downloaded weights)."""
from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.commands import add_gan_argument, command_parser
from pipeline.config import load_section, parse_overrides
from pipeline.errors import UserError
from pipeline.fileio import write_json_atomic


EPILOG = """\
SWD (Karras et al. 2018): Laplacian-pyramid 7x7 patches, 128 per image per level, 512
random projections x 4 repeats, reported x1e3; lower is better. The world's reference
images are held-out scenes (seeds >= 1e9) the GAN never saw. --floor also measures two
disjoint real sets against each other: the best a generator can hope for at this n.

PPL (StyleGAN's, in W, epsilon 1e-4, end-point sampling unless --ppl-sampling full), with
one of three distances, all from local files (nothing is downloaded):
  --lpips-weights LIN.pth --lpips-backbone NET.pth   LPIPS v0.1, as StyleGAN measures PPL:
      LIN.pth = LPIPS's linear layers (the lpips package's weights/v0.1/vgg.pth or
      alex.pth), NET.pth = the matching torchvision state dict (vgg16-397923af.pth or
      alexnet-owt-7be5be79.pth); images at the generator's size, no face crop;
  --encoder PATH   LPIPS's form on a local encoder's features without LPIPS's learned
      weights (the folder of `photoedit train-predictor`, or a torchvision VGG/ResNet
      state dict with --encoder-arch);
  neither          mean squared pixel difference.
Lower is smoother; compare figures only under the same distance, resolution and --ppl-n.
Coverage (--coverage): the same fakes and real images scored by --predictor; for each
attribute the share scoring > 0.5 among fakes and reals and their ratio. A GAN that makes
an attribute a quarter as often as its data (coverage 0.25) has little of it for a
boundary to move along or for pairs to teach: train it longer or wider before editing.
ALS (per --boundary): samples moved along the boundary on its layers at strengths -3..3,
scored by --predictor; the mean R^2 of a straight-line fit of score vs strength (1 =
perfectly linear; an edit that does not move the score counts 0). Our definition: the
paper's (Karmali et al. 2022) exact formula was not available (see gan/metrics.py).

examples:
  photoedit eval-gan --gan runs/gan --data world --n 256
  photoedit eval-gan --gan G.safetensors --data photos/ --n 500 --floor --out swd.json
  photoedit eval-gan --gan runs/gan --no-swd --coverage --predictor classifier --predictor-path predictor/
  photoedit eval-gan --gan runs/gan --ppl --encoder predictor/ --boundary sunny.npz --boundary night.npz
  photoedit eval-gan --gan runs/gan --no-swd --ppl --lpips-weights weights/v0.1/vgg.pth \
      --lpips-backbone ~/models/vgg16-397923af.pth
"""


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("eval-gan", __doc__, EPILOG)
    add_gan_argument(p)
    p.add_argument("--data", default="world", metavar="world|DIR", help="real images: 'world' or a photo folder (default: world)")
    p.add_argument("--n", type=int, default=256, help="images per set (default: 256)")
    p.add_argument("--truncation", type=float, default=1.0, metavar="PSI", help="truncation of the fakes (default: 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fakes' latents (default: 0)")
    p.add_argument("--floor", action="store_true", help="also report SWD between two disjoint real sets")
    p.add_argument("--out", metavar="FILE.json", help="also write the result as JSON")
    p.add_argument("--config", default="quickstart", metavar="PRESET", help="preset for the world: section (default: quickstart)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. world.condition=night")
    p.add_argument("--device", default=None, help="cpu or cuda[:i] (default: cuda if available)")
    m = p.add_argument_group("latent-space metrics (PPL, ALS)")
    m.add_argument("--ppl", action="store_true", help="also measure the perceptual path length in W")
    m.add_argument("--ppl-n", type=int, default=256, help="latent pairs for PPL (default: 256)")
    m.add_argument("--ppl-sampling", choices=("end", "full"), default="end", help="t = 0 or t ~ U[0,1] (default: end)")
    m.add_argument("--encoder", metavar="PATH", help="local encoder for PPL's distance (predictor folder or state dict)")
    m.add_argument("--encoder-arch", default="classifier", metavar="ARCH",
                   help="classifier | vgg11..vgg19 | resnet18/34/50 (default: classifier)")
    m.add_argument("--lpips-weights", metavar="LIN.pth",
                   help="LPIPS v0.1 linear layers (vgg.pth / alex.pth) for PPL's distance (with --lpips-backbone)")
    m.add_argument("--lpips-backbone", metavar="NET.pth",
                   help="torchvision VGG16 / AlexNet state dict matching --lpips-weights")
    m.add_argument("--boundary", action="append", default=[], metavar="FILE.npz",
                   help="ALS of this boundary's attribute (repeatable)")
    m.add_argument("--predictor", default="photometric", help="scores ALS edits and --coverage (default: photometric)")
    m.add_argument("--predictor-path", default=None, help="classifier folder / places365 weights")
    m.add_argument("--als-n", type=int, default=64, help="samples edited per boundary for ALS (default: 64)")
    m.add_argument("--no-swd", action="store_true", help="skip SWD (only the latent-space metrics)")
    m.add_argument("--coverage", action="store_true",
                   help="also: how often the fakes show each attribute --predictor scores, beside the real images")
    return p


def ppl_distance(args, device):
    """PPL's distance and its provenance: LPIPS, a local encoder's features, or pixel MSE."""
    from gan.metrics import feature_distance, pixel_distance

    if bool(args.lpips_weights) != bool(args.lpips_backbone):
        raise UserError("--lpips-weights and --lpips-backbone go together: LPIPS needs its linear layers "
                        "and the VGG16/AlexNet they were trained on")
    if args.lpips_weights:
        if args.encoder:
            raise UserError("--lpips-weights and --encoder both choose PPL's distance: give one of them")
        from gan.checkpoint import file_sha256
        from gan.lpips import LPIPSError, load_lpips

        try:
            model = load_lpips(args.lpips_weights, args.lpips_backbone, device)
        except LPIPSError as e:
            raise UserError(str(e)) from None
        paths = {k: Path(v).expanduser() for k, v in (("weights", args.lpips_weights),
                                                         ("backbone", args.lpips_backbone))}
        return model, {"arch": f"lpips-{model.arch}", **{k: str(v) for k, v in paths.items()},
                       **{f"{k}_sha256": file_sha256(v) for k, v in paths.items()}}
    if args.encoder:
        from pipeline.semantics.encoders import encoder_provenance, load_encoder

        return (feature_distance(load_encoder(args.encoder, args.encoder_arch, device)),
                encoder_provenance(args.encoder, args.encoder_arch))
    return pixel_distance, "pixel_mse"


def latent_metrics(G, args, device, ppl_dist=None) -> dict:
    """PPL (ppl_dist: ppl_distance(args, device), made here if None) and per-boundary ALS as asked for."""
    import numpy as np

    from gan.metrics import attribute_linearity, perceptual_path_length

    out: dict = {}
    if args.ppl:
        distance, out["ppl_distance"] = ppl_dist or ppl_distance(args, device)
        out |= {f"ppl_{k}" if k != "ppl" else "ppl": v for k, v in perceptual_path_length(
            G, distance, n=args.ppl_n, sampling=args.ppl_sampling, seed=args.seed, device=device).items()}
    if args.boundary:
        from pipeline.semantics.boundary import LinearBoundary
        from pipeline.semantics.editing import edit_ws
        from pipeline.semantics.predictors import predictor_from_args

        pred = predictor_from_args(args.predictor, args.predictor_path, device=str(device))
        out["als"] = {}
        for path in args.boundary:
            b = LinearBoundary.load(path)
            attr = b.meta.get("attribute") or Path(path).stem
            names = getattr(pred, "attributes", None)
            if names is not None and attr not in names:
                raise UserError(f"{path}: attribute '{attr}' is not scored by predictor '{args.predictor}' "
                                f"({', '.join(names)})")
            res = attribute_linearity(
                G, lambda img, a=attr: np.asarray(pred.score(img.cpu())[a]),
                lambda ws, s, b=b: edit_ws(ws, b, s), n=args.als_n, seed=args.seed, device=device)
            out["als"][attr] = res | {"boundary": str(path), "layers": b.layers}
    return out



def main(argv: list[str]) -> int:
    import torch

    from gan.checkpoint import CheckpointError, file_sha256, load_generator, resolve_generator_path
    from gan.images import from_uint8
    from gan.swd import swd
    from pipeline.photos.folder import real_sets
    from pipeline.world.scene import WorldConfig

    args = build_parser().parse_args(argv)
    if args.n < 8:
        raise UserError("--n must be at least 8")
    if (args.lpips_weights or args.lpips_backbone) and not args.ppl:
        raise UserError("--lpips-weights/--lpips-backbone choose PPL's distance: add --ppl")
    if args.no_swd and not (args.ppl or args.boundary or args.coverage):
        raise UserError("--no-swd leaves nothing to measure: add --ppl, --boundary or --coverage")
    wcfg = load_section(WorldConfig, "world", args.config, parse_overrides(args.set))
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    ppl_dist = ppl_distance(args, device) if args.ppl else None  # a bad weights file fails before any work
    try:
        path = resolve_generator_path(args.gan)
        G = load_generator(path, device)
    except CheckpointError as e:
        raise UserError(str(e)) from None
    G.eval()
    result = {"gan": str(path), "gan_sha256": file_sha256(path), "data": args.data, "n": args.n,
              "truncation": args.truncation}
    pred = None
    if args.coverage:  # a missing or wrong predictor fails before the images are made
        from pipeline.semantics.predictors import predictor_from_args

        pred = predictor_from_args(args.predictor, args.predictor_path, device=str(device))
    if not args.no_swd or args.coverage:
        reals = [from_uint8(a) for a in real_sets(args.data, tuple(G.resolution), args.n, 2 if args.floor else 1, wcfg)]
        z = torch.randn(args.n, G.z_dim, generator=torch.Generator().manual_seed(args.seed)).to(device)
        with torch.no_grad():
            fakes = torch.cat([G(z[i:i + 32], truncation_psi=args.truncation, noise_mode="const").float().cpu()
                               for i in range(0, args.n, 32)])
    if pred is not None:
        from pipeline.semantics.evaluate import attribute_coverage

        result["coverage"] = cov = attribute_coverage(pred, fakes, reals[0])
        result["coverage_predictor"] = args.predictor
        print(f"coverage ({args.predictor}; share scoring > 0.5, fakes vs real images, n = {args.n} each):")
        for name, r in cov.items():
            if "coverage" in r:
                ratio = f"{r['coverage']:.2f}x" if r["coverage"] is not None else "-"
                print(f"  {name:<14} {r['share_fake']:.3f} vs {r['share_real']:.3f}  ({ratio})")
            else:
                print(f"  {name:<14} mean {r['mean_fake']:.3f} vs {r['mean_real']:.3f}")
    if not args.no_swd:
        result |= {f"swd_{k}": v for k, v in swd(fakes, reals[0]).items()}
        if args.floor:
            result["floor_swd"] = swd(reals[1], reals[0])["swd"]
        line = f"SWD x1e3 = {result['swd_swd']:.2f} (levels fine->coarse: " + \
            ", ".join(f"{v:.1f}" for v in result["swd_levels"]) + ")"
        if args.floor:
            line += f"; real-vs-real floor = {result['floor_swd']:.2f}"
        print(line)
    result |= latent_metrics(G, args, device, ppl_dist)
    if "ppl" in result:
        d = result["ppl_distance"]
        dist = "pixel MSE" if d == "pixel_mse" else \
            f"LPIPS ({d['arch'][6:]})" if d["arch"].startswith("lpips-") else f"{d['arch']} features"
        print(f"PPL (W, {result['ppl_sampling']}, eps 1e-4, {dist}) = {result['ppl']:.4g} over {result['ppl_n']} pairs")
    for attr, r in result.get("als", {}).items():
        print(f"ALS {attr} = {r['als']:.3f} (median {r['als_median']:.3f}; mean score change per unit {r['slope']:+.4f}; "
              f"layers {r['layers']})")
    if args.out:
        write_json_atomic(args.out, result)
    return 0
