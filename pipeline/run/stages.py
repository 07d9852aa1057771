"""The stages of `photoedit run`, built from one preset: each stage drives one or two verbs.

A stage calls the same command modules a user would (`train-gan`, `sample`, `score`,
`boundary`, `rescore`, `train-translator`, `eval-translator`, the edit pipeline), with
the same preset and `--set` overrides, so a run and a hand-typed sequence of commands
give the same result. Per-attribute stages (`boundary-sunny`, `translator-sunny`,
`eval-sunny`) are keyed on that attribute's settings only (the preset's sections with its
`per_attribute:` entries on top, passed to the verbs as `--set`): adding an attribute to a
finished run, or changing one attribute's entries, runs only that attribute's stages; the
GAN is not retrained.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.commands import run_verb
from pipeline.config import attribute_set_args, load_all, resolve_preset, to_dict
from pipeline.errors import UserError
from pipeline.run.runner import Stage


LOG_ONLY = {"tensorboard"}  # settings that change what a training logs, not what it makes


@dataclass
class RunConfig:
    """Section `run:`: what the whole pipeline does, end to end."""

    data: str = "world"  # "world" (built-in procedural streets) or a folder of your photos
    gan: str | None = None  # an existing generator (.safetensors, e.g. from import-gan): no GAN training
    attributes: list[str] = field(default_factory=lambda: ["sunny", "night"])  # one translator each
    predictor: str = "photometric"  # scores samples: photometric | classifier | places365
    predictor_path: str | None = None  # classifier folder / places365 weights folder
    # attribute -> attributes projected out of its boundary; an entry for an attribute outside `attributes`
    # is unused, and one conditioned on such an attribute makes that boundary too (no translator)
    conditions: dict = field(default_factory=dict)
    photos: list[str] = field(default_factory=list)  # files/folders edited at the end; empty = example scenes
    example_photos: int = 4  # example street scenes rendered when `photos` is empty
    example_size: tuple[int, int] = (256, 512)  # their size (H, W)
    eval_pairs: int = 64  # held-out GAN pairs per translator evaluation
    eval_world: int = 32  # held-out world scenes per translator evaluation

    def __post_init__(self):
        if not self.attributes:
            raise ValueError("attributes: give at least one attribute")
        if len(set(self.attributes)) != len(self.attributes):
            raise ValueError(f"attributes: duplicates in {self.attributes}")
        for a, conds in self.conditions.items():
            if not isinstance(conds, list):
                raise ValueError(f"conditions.{a}: expected a list of attributes, got {conds!r}")


def call(verb: str, argv: list[str]) -> int:
    """Run a verb in-process; its UserError propagates to the runner (stage fails, named)."""
    code = run_verb(verb, argv)
    if code not in (0, None):
        raise UserError(f"`photoedit {verb}` exited with code {code}")
    return code


class Plan:
    """The run's stages for one preset + overrides."""

    def __init__(self, preset: str | Path, overrides: list[str], run_dir: Path, device: str | None = None):
        self.preset = resolve_preset(preset)
        self.overrides = list(overrides)
        self.run_dir = Path(run_dir)
        self.device = device
        # Every section resolved and checked now: a typo in any of them fails before any work.
        self.configs = load_all(self.preset, self.overrides)
        self.cfg: RunConfig = self.configs["run"]
        self.cfg.gan = self._preset_relative(self.cfg.gan)
        # Stage keys hash the resolved settings (defaults included), not the YAML as written:
        # the same settings spelt two ways give the same key, a changed default a new one.
        self.sections = {name: to_dict(obj) for name, obj in self.configs.items()}
        # Each attribute's own view: the sections with its `per_attribute:` entries applied.
        # (for the run's attributes and the ones their boundaries are conditioned on)
        self.attr_configs = {a: load_all(self.preset, self.overrides, attribute=a) for a in self.boundary_order()}
        self.attr_sections = {a: {name: to_dict(obj) for name, obj in cfgs.items()}
                              for a, cfgs in self.attr_configs.items()}

    def _preset_relative(self, path: str | None) -> str | None:
        """A relative path that is not found from the current folder is looked up from the
        repository root beside a shipped preset (configs/..), then the preset's own folder,
        so `photoedit run demo` works from any folder (the path as given is kept when it
        exists, so keys made from the repository root stay the same)."""
        if not path or Path(path).expanduser().is_absolute() or Path(path).exists():
            return path
        for base in (self.preset.parent.parent, self.preset.parent):
            if (base / path).exists():
                return str((base / path).resolve())
        return path

    # common arguments every configurable verb gets (with `attr`: its per-attribute entries last, so they win)
    def cfg_args(self, attr: str | None = None) -> list[str]:
        out = ["--config", str(self.preset)]
        for o in self.overrides + (attribute_set_args(self.preset, self.overrides, attr) if attr else []):
            out += ["--set", o]
        return out

    def predictor(self, attr: str) -> tuple[str, str | None]:
        """(name, path) of the predictor that scores `attr` (run: or its per-attribute entry)."""
        run = self.attr_configs[attr]["run"]
        return self._resolve(run.predictor, run.predictor_path)

    @property
    def run_classifier(self) -> Path:
        """The classifier the run trains on world renders (`predictor` stage) when one is
        asked for without a predictor_path."""
        return self.run_dir / "predictor" / "classifier"

    def _resolve(self, name: str, path: str | None,
                 key: str = "run.predictor_path (or per_attribute.<a>.run.predictor_path)") -> tuple[str, str | None]:
        """(name, path) with `classifier` and no path read as the run's own; `key`: the setting to name
        when there is none (a run on photos)."""
        if name == "classifier" and not path:
            if self.cfg.data != "world":
                raise UserError(f"a classifier predictor without a path is the run's own, trained on world renders: "
                                f"give {key} for a photo folder")
            return name, str(self.run_classifier)
        return name, self._preset_relative(path)  # a preset's relative path, as run.gan

    def _key(self, pred: tuple[str, str | None]) -> list:
        """A predictor as it enters a stage key (the run's own classifier by role, not by its path)."""
        return [pred[0], "run" if pred[1] == str(self.run_classifier) else pred[1]]

    def pair_filter(self, attr: str) -> tuple[str, str | None] | None:
        """(name, path) of the predictor that filters `attr`'s training pairs (pairs.filter_predictor),
        or None: `classifier` without a path is the run's own, as for run.predictor."""
        pc = self.attr_configs[attr]["pairs"]
        if not pc.filter_predictor:
            return None
        return self._resolve(pc.filter_predictor, pc.filter_predictor_path,
                             key=f"per_attribute.{attr}.pairs.filter_predictor_path")

    def filters_by_run_classifier(self, attr: str) -> bool:
        return (self.pair_filter(attr) or ("", None))[1] == str(self.run_classifier)

    def trains_classifier(self) -> bool:
        return (any(p[1] == str(self.run_classifier) for p in self.scoring_predictors())
                or any(self.filters_by_run_classifier(a) for a in self.cfg.attributes))

    def predictor_arg(self, attr: str) -> str:
        """`NAME` or `NAME:PATH`, as rescore and eval-translator take it."""
        name, path = self.predictor(attr)
        return name + (f":{path}" if path else "")

    def dev(self) -> list[str]:
        return ["--device", self.device] if self.device else []

    def sec(self, *names: str, attr: str | None = None) -> dict:
        """The named sections' settings as stage keys hash them: without LOG_ONLY keys, so turning
        TensorBoard on neither redoes nor restarts a stage."""
        sections = self.attr_sections[attr] if attr else self.sections
        return {n: {k: v for k, v in sections.get(n, {}).items() if k not in LOG_ONLY} for n in names}

    @property
    def gan_ckpt(self) -> Path:
        return self.run_dir / "gan" / "generator.safetensors"

    @property
    def shard(self) -> Path:
        """The sample shard (its own manifest.json must not meet the stage's)."""
        return self.run_dir / "samples" / "shard"

    def boundary_file(self, attr: str) -> Path:
        return self.run_dir / f"boundary-{attr}" / f"{attr}.npz"

    def bundle(self, attr: str) -> Path:
        return self.run_dir / f"translator-{attr}" / attr

    def stages(self) -> list[Stage]:
        c = self.cfg
        gan_config = ({"gan_file": c.gan} if c.gan else
                      {"data": c.data, "photos": folder_listing_hash(c.data),
                       **self.sec("world", "gan", "train_gan"), **world_key(c.data)})
        st = [
            Stage("gan", self.stage_gan, config=gan_config, inputs=[Path(c.gan)] if c.gan else []),
            Stage("samples", self.stage_samples,
                  config={"predictor": c.predictor, "predictor_path": c.predictor_path, **self.sec("sample"),
                          **({"predictors": [self._key(p) for p in self.scoring_predictors()]}
                             if len(self.scoring_predictors()) > 1 else {})},
                  needs=["gan"] + (["predictor"] if self.trains_classifier() else [])),
        ]
        if self.trains_classifier():
            st.insert(1, Stage("predictor", self.stage_predictor, config=self.sec("predictor")))
        for a in self.boundary_order():
            conds = c.conditions.get(a, [])
            pred = {} if self.predictor(a) == (c.predictor, c.predictor_path) else {"predictor": self._key(self.predictor(a))}
            st.append(Stage(f"boundary-{a}", lambda out, a=a: self.stage_boundary(out, a),
                            config={"attribute": a, "conditions": conds, **pred,
                                    **self.sec("boundary", "rescore", attr=a)},
                            needs=["gan", "samples"] + [f"boundary-{b}" for b in conds]))
        for a in c.attributes:
            st.append(Stage(f"translator-{a}", lambda out, a=a: self.stage_translator(out, a),
                            config=self.sec("pairs", "translator", "train_translator", attr=a),
                            needs=["gan", f"boundary-{a}"] + (["predictor"] if self.filters_by_run_classifier(a) else [])))
            st.append(Stage(f"eval-{a}", lambda out, a=a: self.stage_eval(out, a),
                            config={"pairs": c.eval_pairs, "world": c.eval_world, **world_key("world"),
                                    "predictor": c.predictor if self.predictor(a)[0] == c.predictor
                                    else self._key(self.predictor(a))},
                            needs=[f"translator-{a}"]))
        st.append(Stage("edit", self.stage_edit,
                        config={"photos": c.photos, "examples": c.example_photos,
                                "size": list(c.example_size), **self.sec("edit")},
                        needs=[f"translator-{a}" for a in c.attributes]))
        return st

    def boundary_order(self) -> list[str]:
        """Attributes with the ones they are conditioned on first (their boundaries are inputs),
        including conditions outside run.attributes (a boundary of their own, no translator)."""
        order, visiting = [], set()

        def visit(a: str) -> None:
            if a in order:
                return
            if a in visiting:
                raise UserError(f"run.conditions: '{a}' is conditioned on itself through a cycle")
            visiting.add(a)
            for b in self.cfg.conditions.get(a, []):
                visit(b)
            order.append(a)

        for a in self.cfg.attributes:
            visit(a)
        return order

    # 1. the GAN ---------------------------------------------------------------------
    def stage_gan(self, out: Path) -> dict:
        from gan.checkpoint import EMA_FILENAME
        from pipeline.run.figures import swd_curve

        if self.cfg.gan:
            return self.use_existing_gan(out)
        run = out / "run"
        latest = run / "checkpoints" / "latest"
        resume = ["--resume"] if (latest / EMA_FILENAME).exists() else []  # a killed run goes on
        call("train-gan", ["--data", self.cfg.data, "--out", run, *resume, *self.cfg_args(), *self.dev()])
        shutil.copyfile(latest / EMA_FILENAME, self.gan_ckpt)
        grids = sorted(run.glob("fakes_*.png"))
        if grids:
            shutil.copyfile(grids[-1], out / "samples.png")
        rows = [json.loads(x) for x in (run / "stats.jsonl").read_text().splitlines() if x.strip()]
        swd_curve(run / "stats.jsonl", out / "swd.png")
        swds = [r["swd"] for r in rows if r.get("swd") is not None]
        speeds = [r["img_per_s"] for r in rows if "img_per_s" in r]
        return {"kimg": max((r.get("kimg", 0) for r in rows), default=0),
                "swd_first": swds[0] if swds else None, "swd_final": swds[-1] if swds else None,
                "images_per_s": float(np.median(speeds)) if speeds else None,
                "generator": str(self.gan_ckpt), **self._ppl()}

    def _ppl(self, n: int = 64) -> dict:
        """PPL (W, end points) of the run's generator; distance: HSR's encoder's features if set, else pixels."""
        from gan.checkpoint import load_generator
        from gan.metrics import feature_distance, perceptual_path_length, pixel_distance

        tcfg = self.configs["train_gan"]
        if tcfg.hsr_encoder:
            from pipeline.semantics.encoders import load_encoder

            dist, name = feature_distance(load_encoder(tcfg.hsr_encoder, tcfg.hsr_encoder_arch)), tcfg.hsr_encoder_arch
        else:
            dist, name = pixel_distance, "pixel_mse"
        res = perceptual_path_length(load_generator(self.gan_ckpt).eval(), dist, n=n)
        return {"ppl": res["ppl"], "ppl_distance": name}

    def use_existing_gan(self, out: Path) -> dict:
        from gan.checkpoint import load_generator
        from gan.training import generate, save_grid

        src = Path(self.cfg.gan).expanduser()
        G = load_generator(src).eval()  # fails here, named, if it is not a generator file
        shutil.copyfile(src, self.gan_ckpt)
        save_grid(generate(G, 16, seed=0), out / "samples.png")
        return {"generator": str(self.gan_ckpt), "imported_from": str(src), **self._ppl()}

    # 1b. the world-trained classifier, when a predictor asks for it ----------------------
    def stage_predictor(self, out: Path) -> dict:
        call("train-predictor", ["--data", "world", "--out", self.run_classifier, *self.cfg_args()])
        meta = json.loads((self.run_classifier / "config.json").read_text())
        return {"predictor": str(self.run_classifier), "metrics": meta.get("metrics")}

    # 2-3. samples + scores ------------------------------------------------------------
    def stage_samples(self, out: Path) -> dict:
        c = self.cfg
        shard = self.shard
        call("sample", ["--gan", self.gan_ckpt, "--out", shard, "--no-images", *self.cfg_args(), *self.dev()])
        for name, path in self.scoring_predictors():
            pred = ["--predictor", name] + (["--predictor-path", path] if path else [])
            call("score", ["--samples", shard, *pred, *self.dev()])
        scores = np.load(shard / f"scores_{c.predictor}.npz", allow_pickle=False)
        return {"n": self.configs["sample"].n, "score_means": {k: float(scores[k].mean()) for k in scores.files},
                **self._coverage(out)}

    def _coverage(self, out: Path, n: int = 256) -> dict:
        """How often the GAN draws each attribute beside the real images (`eval-gan --coverage`):
        the first place the chain can lose one. Each of the run's attributes is read by the
        predictor its boundary uses, any other by the run's. Too few photos for n leaves it
        out, said, rather than failing the stage."""
        by = {}
        for i, (name, path) in enumerate(self.scoring_predictors()):
            file = out / ("coverage.json" if i == 0 else f"coverage-{i}-{name}.json")
            try:
                call("eval-gan", ["--gan", self.gan_ckpt, "--data", self.cfg.data, "--n", n, "--no-swd", "--coverage",
                                  "--predictor", name, *(["--predictor-path", path] if path else []),
                                  "--out", file, *self.cfg_args(), *self.dev()])
            except UserError as e:
                return {"coverage_skipped": str(e)}
            rows = json.loads(file.read_text())["coverage"]
            by[(name, path)] = {k: dict(v, predictor=name) for k, v in rows.items() if "coverage" in v}
        rows = dict(next(iter(by.values())))  # the run's predictor first (scoring_predictors)
        for a in self.attr_configs:
            own = by[self.predictor(a)]
            if a in own:
                rows[a] = own[a]
        return {"coverage": rows, "coverage_n": n}

    def scoring_predictors(self) -> list[tuple[str, str | None]]:
        """Every predictor the run's boundaries need, run:'s own first (its scores are the stage's summary)."""
        out = [self._resolve(self.cfg.predictor, self.cfg.predictor_path)]
        for a in self.boundary_order():
            if self.predictor(a) not in out:
                out.append(self.predictor(a))
        return out

    # 4. boundary + layer-wise re-scoring ---------------------------------------------
    def stage_boundary(self, out: Path, attr: str) -> dict:
        c = self.cfg
        conds = []
        for b in c.conditions.get(attr, []):
            conds += ["--condition", self.boundary_file(b)]
        path = self.boundary_file(attr)
        call("boundary", ["--samples", self.shard, "--predictor", self.predictor(attr)[0],
                          "--attribute", attr, *conds, "--out", path, *self.cfg_args(attr)])
        call("rescore", ["--gan", self.gan_ckpt, "--boundary", path, "--predictor", self.predictor_arg(attr),
                         "--out", out, *self.cfg_args(attr), *self.dev()])
        meta = json.loads(path.with_suffix(".json").read_text())
        shutil.copyfile(out / f"rescore_{attr}.png", out / "rescore.png")
        acc = meta["accuracies"]
        return {"val_accuracy": acc["validation"], "remaining_accuracy": acc["remaining"],
                "layers": meta["layers"], "score_change_at_3": self._edit_effect(path, attr),
                "als": self._als(path, attr), "boundary": str(path)}

    def _als(self, boundary_file: Path, attr: str, n: int = 32) -> float:
        """Attribute linearity (gan/metrics.py) of the edit on the chosen layers, strengths -3..3."""
        from gan.checkpoint import load_generator
        from gan.metrics import attribute_linearity
        from pipeline.semantics.boundary import LinearBoundary
        from pipeline.semantics.editing import edit_ws
        from pipeline.semantics.predictors import predictor_from_args

        b = LinearBoundary.load(boundary_file)
        pred = predictor_from_args(*self.predictor(attr))
        res = attribute_linearity(load_generator(self.gan_ckpt).eval(), lambda img: pred.score(img)[attr],
                                  lambda ws, s: edit_ws(ws, b, s), n=n, seed=777)
        return res["als"]

    def _edit_effect(self, boundary_file: Path, attr: str, n: int = 64) -> float:
        """Mean rise of the attribute's score when fresh samples move +3 on the chosen layers."""
        from gan.checkpoint import load_generator
        from pipeline.semantics.boundary import LinearBoundary
        from pipeline.semantics.predictors import predictor_from_args
        from pipeline.semantics.rescore import RescoreConfig, rescore

        b = LinearBoundary.load(boundary_file)
        pred = predictor_from_args(*self.predictor(attr))
        res = rescore(load_generator(self.gan_ckpt).eval(), b, {self.predictor(attr)[0]: pred},
                      RescoreConfig(n=n, distance=3.0, seed=777), groups=[b.layers], attribute=attr,
                      progress=False)
        return float(res.table[attr][0])

    # 5-6. pairs streamed into translator training ------------------------------------
    def stage_translator(self, out: Path, attr: str) -> dict:
        from pipeline.run.figures import pair_sheet

        bundle, run = self.bundle(attr), out / "run"
        resume = ["--resume"] if (run / "state.pt").exists() else []  # a killed run goes on
        flt = self.pair_filter(attr)  # the run's own classifier by its path here, by role in the key
        flt_args = ["--set", f"pairs.filter_predictor_path={json.dumps(flt[1])}"] if flt and flt[1] else []
        call("train-translator", ["--gan", self.gan_ckpt, "--boundary", self.boundary_file(attr),
                                  "--out", bundle, "--run-dir", run, *resume,
                                  *self.cfg_args(attr), *flt_args, *self.dev()])
        pair_sheet(self.gan_ckpt, self.boundary_file(attr), out / "pairs.png")
        return {"bundle": str(bundle)}

    # 7. evaluation --------------------------------------------------------------------
    def stage_eval(self, out: Path, attr: str) -> dict:
        c = self.cfg
        bundle = self.bundle(attr)
        call("eval-translator", [bundle, "--gan", self.gan_ckpt, "--boundary", self.boundary_file(attr),
                                 "--n-pairs", c.eval_pairs, "--n-world", c.eval_world,
                                 "--predictor", self.predictor_arg(attr), "--write", *self.dev()])
        from pipeline.run.figures import strength_strip, world_sheet
        from pipeline.semantics.evaluate import world_skip_reason

        if world_skip_reason(attr) is None:  # a user's own attribute has no world scenes to show
            world_sheet(bundle, attr, out / "world.png")
            strength_strip(bundle, attr, out / "strength.png")
        return json.loads((bundle / "config.json").read_text()).get("metrics", {})

    # 8. edit photos -------------------------------------------------------------------
    def stage_edit(self, out: Path) -> dict:
        """Edit the run's photos (or example scenes) with each attribute, through the same
        command a user types (`photoedit --attribute A ... -o OUT`); sheets for the report."""
        from pipeline.photos.batch import plan_jobs
        from pipeline.run.figures import edit_sheet, example_scenes

        c = self.cfg
        inputs = ([Path(p) for p in c.photos] if c.photos
                  else example_scenes(out / "inputs", c.example_photos, tuple(c.example_size)))
        edited = 0
        for attr in c.attributes:
            call("edit", ["--attribute", attr, "--models", self.bundle(attr).parent, *inputs, "-o", out / attr])
            jobs = [j for j in plan_jobs([str(p) for p in inputs], [attr], str(out / attr)) if j.dst.is_file()]
            edited += len(jobs)
            if jobs:
                edit_sheet(jobs, out / f"sheet-{attr}.jpg")
        return {"edited": edited, "inputs": [str(p) for p in inputs]}


def world_key(data: str) -> dict:
    """{"world_version": ...} for work on the built-in world's renders (a changed renderer
    re-runs it: no training on stale streets), nothing for a photo folder."""
    if data != "world":
        return {}
    from pipeline.world.version import world_version

    return {"world_version": world_version()}


def folder_listing_hash(data: str) -> str | None:
    """For a photo folder: a hash of its file names, sizes and times, so adding or changing
    photos retrains the GAN without reading every photo. None for the built-in world."""
    root = Path(data).expanduser()
    if data == "world" or not root.is_dir():
        return None
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        st = f.stat()
        h.update(f"{f.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()
