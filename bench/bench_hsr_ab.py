"""A/B of HSR (gan/hsr.py) against no regulariser on the quickstart world GAN, >= 2 seeds.

The paper's recipe (Karmali et al. 2022) fine-tunes a trained baseline with HSR. So for
each seed one baseline is trained for --base-kimg, then copied twice and resumed for
--tune-kimg more: once as it was (arm "none"), once with HSR (arm "hsr"). The two arms
of a seed share everything up to the fork (weights, optimiser, RNG state) and see the
same number of images; only the regulariser differs. Wall time of each arm is reported
(the machine is shared: it is not controlled).

Per arm, with the same commands a user runs: `sample` + `score` (photometric), `boundary`
for sunny and night + `rescore` (layers), then `eval-gan` (SWD vs held-out renders, PPL
with the HSR encoder's features as the distance, ALS of both boundaries), plus the
boundary's validation accuracy and the re-scoring leakage: the mean |change| of the
other photometric attributes when the edit moves +3 on its chosen layers.

    python bench/bench_hsr_ab.py --encoder /tmp/h6/predictor --out /tmp/h6_ab
    python bench/bench_hsr_ab.py --encoder /tmp/h6/predictor --step-cost 20   # HSR's cost per step
    # a variant of the hsr arm beside a finished A/B (its seed*/base copied into the new --out):
    python bench/bench_hsr_ab.py --encoder /tmp/h6/predictor --out /tmp/hsr_coarse --seeds 0 1 --arms hsr \
        --tune-kimg 1.0 --hsr-set train_gan.hsr_levels=[0,1]

--downstream adds what the GANs are for: per arm and attribute, the quickstart's
translator stages through the user's commands: `rescore` with the quickstart config
(edit_layers=all, as `photoedit run quickstart` edits) on a copy of the arm's boundary,
`train-translator --gan --boundary` (pairs streamed as the quickstart's translator stage
does; --translator-steps shortens the quickstart's 800 steps) and `eval-translator`
(held-out GAN pairs and world re-renders, the quickstart's 64 and 32). The GANs and
boundaries come from a finished A/B (--source, default --out); results go to --out:

    nice -n 10 env OMP_NUM_THREADS=1 python bench/bench_hsr_ab.py --encoder /tmp/h6/predictor \
        --source /tmp/h6_ab --out /tmp/hsr_ds --seeds 0 1 --downstream
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ATTRS = ("sunny", "night")


def photoedit(*args, log: Path) -> None:
    cmd = [sys.executable, "-m", "pipeline", *[str(a) for a in args]]
    with open(log, "a") as f:
        f.write("$ photoedit " + " ".join(str(a) for a in args) + "\n")
        f.flush()
        subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, check=True, env=os.environ | {"TQDM_DISABLE": "1"})


def train(out: Path, kimg: float, seed: int, extra: list[str], log: Path, resume: bool = False) -> float:
    t0 = time.time()
    sets = [f"train_gan.kimg={kimg}", "train_gan.minutes=0", f"train_gan.seed={seed}", *extra]
    photoedit("train-gan", "--out", out, *(["--resume"] if resume else []),
              *[a for s in sets for a in ("--set", s)], log=log)
    return time.time() - t0


def leakage(gan: Path, boundary: Path, attr: str, n: int) -> dict:
    """Mean change of every photometric score when fresh samples move +3 on the boundary's layers."""
    from gan.checkpoint import load_generator
    from pipeline.semantics.boundary import LinearBoundary
    from pipeline.semantics.predictors import predictor_from_args
    from pipeline.semantics.rescore import RescoreConfig, rescore

    b = LinearBoundary.load(boundary)
    pred = predictor_from_args("photometric")
    res = rescore(load_generator(gan).eval(), b, {"photometric": pred}, RescoreConfig(n=n, distance=3.0, seed=777),
                  groups=[b.layers], attribute=attr, progress=False)
    changes = {k: float(v[0]) for k, v in res.table.items()}
    others = [abs(v) for k, v in changes.items() if k != attr]
    return {"target_change": changes.get(attr), "leakage": float(sum(others) / max(len(others), 1)),
            "changes": changes}


def evaluate(arm: Path, gan: Path, encoder: Path, args, log: Path) -> dict:
    t0 = time.time()
    shard = arm / "samples"
    photoedit("sample", "--gan", gan, "--out", shard, "--no-images", "--n", args.samples, log=log)
    photoedit("score", "--samples", shard, "--predictor", "photometric", log=log)
    res: dict = {"boundaries": {}}
    for attr in ATTRS:
        bfile = arm / f"{attr}.npz"
        photoedit("boundary", "--samples", shard, "--predictor", "photometric", "--attribute", attr,
                  "--out", bfile, log=log)
        photoedit("rescore", "--gan", gan, "--boundary", bfile, "--out", arm / "rescore",
                  "--n", args.rescore_n, log=log)
        meta = json.loads(bfile.with_suffix(".json").read_text())
        res["boundaries"][attr] = {"val_accuracy": meta["accuracies"]["validation"], "layers": meta["layers"],
                                   **leakage(gan, bfile, attr, args.rescore_n)}
    photoedit("eval-gan", "--gan", gan, "--n", args.swd_n, "--ppl", "--ppl-n", args.ppl_n,
              "--encoder", encoder, *[a for attr in ATTRS for a in ("--boundary", arm / f"{attr}.npz")],
              "--als-n", args.als_n, "--out", arm / "eval_gan.json", log=log)
    res["eval_gan"] = json.loads((arm / "eval_gan.json").read_text())
    res["eval_seconds"] = time.time() - t0
    return res


def downstream(folder: Path, gan: Path, boundary_src: Path, attr: str, args, log: Path) -> dict:
    """The quickstart's translator stages for one arm and attribute: rescore, train-translator, eval-translator."""
    t0 = time.time()
    folder.mkdir(parents=True, exist_ok=True)
    bfile = folder / f"{attr}.npz"
    if not bfile.exists():  # the A/B's boundary, re-scored with the quickstart's edit_layers (a copy: source untouched)
        shutil.copyfile(boundary_src, folder / f"{attr}.tmp.npz")
        shutil.copyfile(boundary_src.with_suffix(".json"), folder / f"{attr}.tmp.json")
        photoedit("rescore", "--gan", gan, "--boundary", folder / f"{attr}.tmp.npz", "--out", folder / "rescore",
                  "--n", args.rescore_n, log=log)
        os.replace(folder / f"{attr}.tmp.json", bfile.with_suffix(".json"))
        os.replace(folder / f"{attr}.tmp.npz", bfile)
    bundle, run = folder / "bundle", folder / "bundle.run"
    if not (bundle / "model.safetensors").exists():
        photoedit("train-translator", "--gan", gan, "--boundary", bfile, "--out", bundle, "--run-dir", run,
                  *(["--resume"] if (run / "state.pt").exists() else []), "--quiet",
                  "--set", f"train_translator.steps={args.translator_steps}", log=log)
    train_s = time.time() - t0
    out = folder / "eval_translator.json"
    with open(log, "a") as f:
        f.write(f"$ photoedit eval-translator {bundle} --gan {gan} --boundary {bfile} --json\n")
    res = subprocess.run([sys.executable, "-m", "pipeline", "eval-translator", str(bundle), "--gan", str(gan),
                          "--boundary", str(bfile), "--n-pairs", str(args.eval_pairs), "--n-world",
                          str(args.eval_world), "--json"], capture_output=True, text=True, check=True,
                         env=os.environ | {"TQDM_DISABLE": "1"})
    metrics = json.loads(res.stdout.strip().splitlines()[-1])
    out.write_text(json.dumps(metrics, indent=1))
    layers = json.loads(bfile.with_suffix(".json").read_text())["layers"]
    return {"metrics": metrics, "layers": layers, "train_seconds": train_s, "seconds": time.time() - t0,
            "loadavg_after": os.getloadavg()}


def downstream_row(r: dict) -> dict:
    m = r["metrics"]
    w, base = m["world"], m.get("baselines", {})
    row = {"heldout_psnr_gain": m["heldout_pairs"]["psnr_gain_db"], "world_psnr_gain": w["psnr_gain_db"],
           "world_psnr_gain_best": w.get("psnr_gain_db_at_best"), "world_ssim_gain": w["ssim_gain"]}
    if "gan_matrix" in base:
        row["gan_matrix_world_gain"] = base["gan_matrix"]["psnr_gain_db"]
    curve = m.get("score_vs_strength", {}).get("world")
    if curve:  # how far the translator moves the attribute's score on world scenes, s = 0 -> 1
        row["world_score_rise"] = curve[-1] - curve[0]
    return row


DOWNSTREAM_ROWS = (("heldout_psnr_gain", "held-out GAN pairs, PSNR gain dB (each arm's own GAN)"),
                   ("world_psnr_gain", "world re-renders, PSNR gain dB at s = 1"),
                   ("world_psnr_gain_best", "world re-renders, gain dB at the best s"),
                   ("gan_matrix_world_gain", "baseline: GAN's global colour matrix on the world, dB"),
                   ("world_score_rise", "world: score rise s = 0 -> 1"))


def markdown_table(results: dict, seeds, attributes) -> str:
    """Translator gains per seed and arm, and the mean of the per-seed HSR - none differences."""
    cols = [(s, a) for s in seeds for a in ("none", "hsr")]
    lines = ["| translator | " + " | ".join(f"seed{s} {'HSR' if a == 'hsr' else a}" for s, a in cols)
             + " | HSR - none, mean of seeds | seeds where HSR is higher |",
             "|---|" + "---|" * (len(cols) + 2)]
    for attr in attributes:
        for metric, label in DOWNSTREAM_ROWS:
            vals = {c: downstream_row(results[f"seed{c[0]}/{c[1]}/{attr}"]).get(metric)
                    if f"seed{c[0]}/{c[1]}/{attr}" in results else None for c in cols}
            diffs = [vals[(s, "hsr")] - vals[(s, "none")] for s in seeds
                     if vals[(s, "hsr")] is not None and vals[(s, "none")] is not None]
            cells = [f"{v:.2f}" if v is not None else "-" for v in vals.values()]
            lines.append(f"| {attr}: {label} | " + " | ".join(cells) + " | "
                         + (f"{statistics.mean(diffs):+.2f} | {sum(d > 0 for d in diffs)} of {len(diffs)} |"
                            if diffs else "- | - |"))
    return "\n".join(lines)


def run_downstream(args) -> int:
    source = args.source or args.out
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "log.txt"
    results_file = args.out / "downstream.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    results.setdefault("loadavg_start", os.getloadavg())
    for seed in args.seeds:
        for attr in args.attributes:  # both arms of an attribute before the next: a cut-short run still compares
            for arm in args.arms:
                src = source / f"seed{seed}" / arm
                gan = src / "run" / "checkpoints" / "latest" / "generator_ema.safetensors"
                if not gan.exists():
                    raise SystemExit(f"{gan}: missing (run the A/B first, or give --source)")
                key = f"seed{seed}/{arm}/{attr}"
                if key in results:
                    continue
                r = downstream(args.out / f"seed{seed}" / arm / "downstream" / attr, gan, src / f"{attr}.npz",
                               attr, args, log)
                results[key] = r
                results_file.write_text(json.dumps(results, indent=1))
                print(key, json.dumps(downstream_row(r)), f"{r['seconds']:.0f} s", flush=True)
    results["loadavg_end"] = os.getloadavg()
    results_file.write_text(json.dumps(results, indent=1))
    upstream = json.loads((source / "results.json").read_text()) if (source / "results.json").exists() else {}
    print("\nper arm (GAN metrics from the A/B, translator gains in dB over do-nothing):")
    for seed in args.seeds:
        for arm in args.arms:
            row = summary_row(upstream[f"seed{seed}/{arm}"]) if f"seed{seed}/{arm}" in upstream else {}
            for attr in args.attributes:
                row |= {f"{k}_{attr}": v for k, v in downstream_row(results[f"seed{seed}/{arm}/{attr}"]).items()}
            print(f"seed{seed}/{arm}", json.dumps(row))
    print("\n" + markdown_table(results, args.seeds, args.attributes))
    for attr in args.attributes:
        for metric in ("heldout_psnr_gain", "world_psnr_gain"):
            diffs = [downstream_row(results[f"seed{s}/hsr/{attr}"])[metric]
                     - downstream_row(results[f"seed{s}/none/{attr}"])[metric]
                     for s in args.seeds if all(f"seed{s}/{a}/{attr}" in results for a in ("hsr", "none"))]
            if diffs:
                print(f"{attr} {metric}: HSR - none per seed " + ", ".join(f"{d:+.2f}" for d in diffs)
                      + f" dB (mean {statistics.mean(diffs):+.2f})")
    return 0


def summary_row(r: dict) -> dict:
    e = r["eval_gan"]
    row = {"swd": e["swd_swd"], "ppl": e["ppl"], "train_seconds": r["train_seconds"]}
    for attr in ATTRS:
        row[f"als_{attr}"] = e["als"][attr]["als"]
        row[f"slope_{attr}"] = e["als"][attr]["slope"]
        b = r["boundaries"][attr]
        row[f"val_acc_{attr}"] = b["val_accuracy"]
        row[f"leak_{attr}"] = b["leakage"]
        row[f"change_{attr}"] = b["target_change"]
    return row


def step_cost(encoder: Path, steps: int) -> dict:
    """Seconds per quickstart training step with and without HSR, interleaved (same load for both)."""
    import torch

    from gan.training import Trainer
    from pipeline.commands.train_gan import build_parser, load_configs
    from pipeline.semantics.encoders import load_encoder

    gcfg, tcfg, _ = load_configs(build_parser().parse_args([]))
    enc = load_encoder(encoder)
    trainers = {"none": Trainer(gcfg, tcfg), "hsr": Trainer(gcfg, type(tcfg)(**(tcfg.to_dict() | {"hsr_weight": 1.0})),
                                                            hsr_encoder=enc)}
    real = torch.rand(tcfg.batch, 3, *gcfg.resolution) * 2 - 1
    times = {k: [] for k in trainers}
    for i in range(steps + 1):
        for k, tr in trainers.items():
            t0 = time.perf_counter()
            tr.train_step(real)
            if i:
                times[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"step_s_median": med, "hsr_over_none": med["hsr"] / med["none"], "steps": steps,
            "loadavg": os.getloadavg()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--encoder", type=Path, required=True, help="`photoedit train-predictor --data world` folder")
    p.add_argument("--out", type=Path, default=Path("/tmp/hsr_ab"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--base-kimg", type=float, default=1.0, help="baseline training before the fork")
    p.add_argument("--tune-kimg", type=float, default=0.75, help="images after the fork, both arms")
    p.add_argument("--hsr-weight", type=float, default=1.0)
    p.add_argument("--hsr-set", action="append", default=[], metavar="KEY=VALUE",
                   help="more overrides for the hsr arm only, e.g. train_gan.hsr_levels=[0,1] (a variant)")
    p.add_argument("--samples", type=int, default=1000, help="samples for the boundaries")
    p.add_argument("--rescore-n", type=int, default=100)
    p.add_argument("--swd-n", type=int, default=128)
    p.add_argument("--ppl-n", type=int, default=128)
    p.add_argument("--als-n", type=int, default=32)
    p.add_argument("--arms", nargs="+", default=["hsr", "none"], choices=["hsr", "none"],
                   help="arms to run (e.g. only hsr at another weight, beside a finished A/B's base runs)")
    p.add_argument("--step-cost", type=int, default=0, metavar="STEPS",
                   help="only time STEPS quickstart training steps with and without HSR (interleaved) and exit")
    d = p.add_argument_group("downstream translators (--downstream)")
    d.add_argument("--downstream", action="store_true",
                   help="train and evaluate sunny/night translators on every arm's GAN (see the docstring)")
    d.add_argument("--source", type=Path, default=None, help="finished A/B folder with the GANs (default: --out)")
    d.add_argument("--attributes", nargs="+", default=list(ATTRS), choices=ATTRS, help="translators to train")
    d.add_argument("--translator-steps", type=int, default=800, help="train_translator.steps (quickstart: 800)")
    d.add_argument("--eval-pairs", type=int, default=64, help="held-out GAN pairs (quickstart: 64)")
    d.add_argument("--eval-world", type=int, default=32, help="held-out world scenes (quickstart: 32)")
    args = p.parse_args(argv)
    if args.downstream:
        return run_downstream(args)
    if args.step_cost:
        r = step_cost(args.encoder, args.step_cost)
        print(json.dumps(r, indent=1))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "log.txt"
    results_file = args.out / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    load = {"start": os.getloadavg()}
    for seed in args.seeds:
        base = args.out / f"seed{seed}" / "base"
        if not (base / "checkpoints" / "latest").exists():
            results[f"seed{seed}_base_seconds"] = train(base, args.base_kimg, seed, [], log)
        for arm, extra in (("hsr", [f"train_gan.hsr_weight={args.hsr_weight}",
                                    f"train_gan.hsr_encoder={args.encoder}", *args.hsr_set]), ("none", [])):
            key = f"seed{seed}/{arm}"
            if key in results or arm not in args.arms:
                continue
            folder = args.out / f"seed{seed}" / arm
            run, done = folder / "run", folder / "trained.json"
            if done.exists():  # trained earlier; only the evaluation is redone
                secs = json.loads(done.read_text())["seconds"]
            else:
                if run.exists():
                    shutil.rmtree(run)
                shutil.copytree(base, run, symlinks=True)
                secs = train(run, args.base_kimg + args.tune_kimg, seed, extra, log, resume=True)
                done.write_text(json.dumps({"seconds": secs}))
            gan = run / "checkpoints" / "latest" / "generator_ema.safetensors"
            r = evaluate(folder, gan, args.encoder, args, log)
            r["train_seconds"] = secs
            r["loadavg_after"] = os.getloadavg()
            results[key] = r
            results_file.write_text(json.dumps(results, indent=1))
            print(key, json.dumps(summary_row(r)), flush=True)
    load["end"] = os.getloadavg()
    rows = {k: summary_row(v) for k, v in results.items() if "/" in k}
    if any(f"seed{s}/{a}" not in rows for s in args.seeds for a in ("hsr", "none")):
        print("\n".join(f"{k} {json.dumps(v)}" for k, v in rows.items()))
        return 0
    table = {}
    for metric in next(iter(rows.values())):
        per_seed = {}
        for seed in args.seeds:
            a, b = rows[f"seed{seed}/none"][metric], rows[f"seed{seed}/hsr"][metric]
            per_seed[seed] = {"none": a, "hsr": b, "hsr_vs_none_pct": 100 * (b - a) / abs(a) if a else None}
        pcts = [v["hsr_vs_none_pct"] for v in per_seed.values() if v["hsr_vs_none_pct"] is not None]
        table[metric] = {"per_seed": per_seed, "mean_pct": statistics.mean(pcts) if pcts else None}
    summary = {"table": table, "loadavg": load, "args": {k: str(v) for k, v in vars(args).items()}}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    for metric, t in table.items():
        cells = "  ".join(f"s{s}: {v['none']:.4g} -> {v['hsr']:.4g}" for s, v in t["per_seed"].items())
        mp = t["mean_pct"]
        print(f"{metric:<16} {cells}   mean change {mp:+.1f}%" if mp is not None else f"{metric:<16} {cells}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
