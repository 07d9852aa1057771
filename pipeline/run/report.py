"""`report.html` for a run folder: one self-contained page (images embedded as data URIs).

The report only reads what the stages left in the run folder (their manifests and the
figures they saved); `photoedit report RUN_DIR` rebuilds it at any time. A section whose
stage has not run says so instead of breaking.
"""
from __future__ import annotations

import base64
import html
import mimetypes
from pathlib import Path

from pipeline.errors import UserError
from pipeline.fileio import atomic_write_text
from pipeline.run.runner import read_manifest

SECTIONS = [
    ("gan", "GAN: samples and sliced Wasserstein distance"),
    ("boundaries", "Attribute boundaries in latent space"),
    ("hierarchy", "Semantic hierarchy: which layers move which attribute"),
    ("pairs", "Synthetic training pairs"),
    ("translators", "Translators on held-out world scenes vs the true re-render"),
    ("strength", "Strength slider (0 to 1)"),
    ("photos", "Edits of photos"),
    ("lse", "Semantics inside the GAN: linear semantic extractor (LSE) masks over samples"),
    ("scs", "Semantic-conditional sampling (SCS): images that follow a layout"),
    ("sie", "Semantic image editing (SIE): a region repainted with another class"),
    ("dissection", "GAN Dissection: which units draw which classes"),
    ("timings", "Time spent in each stage"),
]
# Sections of the semantics commands (issue #15): shown only when their files are in the run folder.
OPTIONAL = ("lse", "scs", "sie", "dissection")

CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{margin-bottom:0}section{margin:2em 0;border-top:1px solid #ddd;padding-top:1em}
img{max-width:100%;image-rendering:auto;border:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.missing{color:#a00}.caption{color:#555;font-size:.9em}
figure{display:inline-block;margin:.5em;vertical-align:top}
"""


def data_uri(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0] or "image/png"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def img(path: Path, caption: str = "") -> str:
    if not path.is_file():
        return f'<p class="missing">missing figure: {html.escape(str(path.name))}</p>'
    cap = f'<figcaption class="caption">{html.escape(caption)}</figcaption>' if caption else ""
    return f'<figure><img src="{data_uri(path)}" alt="{html.escape(caption or path.name)}">{cap}</figure>'


def table(header: list[str], rows: list[list]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.3f}"
        return html.escape(str(v))
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{fmt(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def stages_like(run_dir: Path, prefix: str) -> list[tuple[str, Path, dict]]:
    """(suffix, folder, manifest) for finished stages named `<prefix>-<suffix>`."""
    out = []
    for d in sorted(run_dir.glob(f"{prefix}-*")):
        m = read_manifest(d)
        if m is not None:
            out.append((d.name[len(prefix) + 1:], d, m))
    return out


def stage_figures(run: Path, prefix: str, name: str, caption: str, what: str) -> str:
    """One figure `name` per finished `<prefix>-<attr>` stage; caption formatted with attr."""
    found = stages_like(run, prefix)
    if not found:
        return not_run(what)
    return "".join(img(d / name, caption.format(attr=attr)) for attr, d, _ in found)


def not_run(what: str) -> str:
    return f'<p class="missing">{html.escape(what)} has not run in this folder yet.</p>'


def section_gan(run: Path) -> str:
    m = read_manifest(run / "gan")
    if m is None:
        return not_run("the GAN stage")
    met = m.get("metrics", {})
    rows = [[k, v] for k, v in met.items() if isinstance(v, (int, float))]
    return (img(run / "gan" / "samples.png", "EMA generator samples (truncation 1)")
            + img(run / "gan" / "swd.png", "SWD x1e3 of EMA samples vs held-out renders, with the real-vs-real floor")
            + table(["metric", "value"], rows) + coverage_table(run))


def coverage_table(run: Path) -> str:
    """The samples stage's coverage: how often the GAN draws each attribute beside the reals."""
    met = (read_manifest(run / "samples") or {}).get("metrics", {})
    cov = met.get("coverage")
    if not cov:
        return ""
    nan = float("nan")
    rows = [[a, r.get("predictor", ""), r["share_fake"], r["share_real"], nan if r["coverage"] is None else r["coverage"]]
            for a, r in cov.items()]
    return (table(["attribute", "predictor", "share of GAN samples scoring > 0.5", "share of real images",
                   "coverage (ratio)"], rows)
            + f'<p class="caption">{met.get("coverage_n")} samples and {met.get("coverage_n")} held-out real images '
              "scored by the predictor each attribute's boundary uses (photoedit eval-gan --coverage). An attribute "
              "the GAN draws far less often than its data shows (coverage well under 1) gives its boundary little "
              "to move along.</p>")


def section_boundaries(run: Path) -> str:
    found = stages_like(run, "boundary")
    if not found:
        return not_run("the boundary stage")
    rows = []
    for attr, _, m in found:
        met = m["metrics"]
        rows.append([attr, met.get("val_accuracy", float("nan")), met.get("remaining_accuracy", float("nan")),
                     ", ".join(map(str, met.get("layers", []))), met.get("score_change_at_3", float("nan")),
                     met.get("als", float("nan"))])
    return table(["attribute", "validation accuracy", "accuracy on the rest", "layers edited",
                  "mean positive score change at +3 (edited layers)",
                  "ALS: edit linearity, 1 = linear (docs/hsr.md)"], rows)


def section_hierarchy(run: Path) -> str:
    return stage_figures(run, "boundary", "rescore.png", "{attr}: mean positive score change per edited layer",
                         "re-scoring")


def section_pairs(run: Path) -> str:
    return stage_figures(run, "translator", "pairs.png", "{attr}: GAN original (top) and edited (bottom)",
                         "pair generation")


def section_translators(run: Path) -> str:
    found = stages_like(run, "eval")
    if not found:
        return not_run("translator evaluation")
    rows, base_rows, figs = [], [], []
    nan = float("nan")
    for attr, d, m in found:
        met = m["metrics"]
        hp, wd = met.get("heldout_pairs") or {}, met.get("world") or {}
        rows.append([attr, hp.get("psnr_gain_db", nan), hp.get("ssim_gain", nan),
                     wd.get("psnr_gain_db", nan), wd.get("ssim_gain", nan),
                     str(met.get("strength_monotonic", ""))])
        b = met.get("baselines") or {}
        gain = lambda k: (b.get(k) or {}).get("psnr_gain_db", nan)  # noqa: E731
        ratio = lambda k: nan if b.get(k) is None else b[k]  # noqa: E731
        base_rows.append([attr, wd.get("psnr_gain_db", nan), gain("gan_matrix"), gain("oracle_matrix"),
                          gain("oracle_translator"), ratio("gan_edit_fidelity"), ratio("translator_locality_db")])
        if met.get("world"):
            figs.append(img(d / "world.png", f"{attr}: input | translator | true re-render"))
    return (table(["attribute", "held-out pairs PSNR gain (dB)", "SSIM gain", "world PSNR gain (dB)",
                   "world SSIM gain", "score monotonic in strength"], rows)
            + '<p class="caption">Gains are over "do nothing" (output = input), against the GAN target '
              "for held-out pairs and against the true re-render for world scenes the GAN never saw.</p>"
            + table(["attribute", "translator world gain (dB)", "(a) global matrix on GAN pairs",
                     "(b) oracle global matrix", "(c) oracle translator", "GAN edit fidelity (a)/(b)",
                     "translator locality (dB) = translator - (a)"], base_rows)
            + '<p class="caption">Baselines on the same world scenes (photoedit eval-translator): one global '
              "3x4 colour matrix fitted on the GAN's pairs (a) or on true world pairs of other scenes (b), and "
              "the same translator trained on true world pairs (c; nan = not measured). A translator worth a "
              "network beats (b).</p>"
            + "".join(figs))


def section_strength(run: Path) -> str:
    found = stages_like(run, "eval")
    if not found:
        return not_run("translator evaluation")
    return "".join(img(d / "strength.png", f"{attr}: strength 0, 0.25, 0.5, 0.75, 1")
                   for attr, d, m in found if m["metrics"].get("world"))  # none for a user's own attribute


def section_photos(run: Path) -> str:
    m = read_manifest(run / "edit")
    if m is None:
        return not_run("the photo edit stage")
    figs = sorted((run / "edit").glob("sheet-*.jpg"))
    if not figs:
        return '<p class="missing">no photos were edited in this run.</p>'
    return "".join(img(f, f.stem.replace("sheet-", "") + ": original | edited") for f in figs)


def lse_files(run: Path) -> list[Path]:
    """Extractors from `photoedit lse` in the run folder (RUN/lse*.safetensors, RUN/lse*/*.safetensors)."""
    return sorted({*run.glob("lse*.safetensors"), *run.glob("lse*/*.safetensors")})


def section_lse(run: Path) -> str | None:
    found = lse_files(run)
    gan = run / "gan" / "generator.safetensors"
    if not found or not gan.is_file():
        return None
    from pipeline.run.figures import lse_mask_sheet

    parts = []
    for f in found:
        png = f.with_name(f.stem + "_masks.png")
        rel = f.relative_to(run).as_posix()
        try:
            if not png.is_file() or png.stat().st_mtime < max(f.stat().st_mtime, gan.stat().st_mtime):
                names = lse_mask_sheet(gan, f, png)
            else:
                from pipeline.semantics.lse import load_extractor

                names = [v for _, v in sorted(load_extractor(f)[1].items())]
        except (UserError, ValueError, RuntimeError, OSError) as e:  # e.g. an extractor of another generator
            parts.append(f'<p class="missing">{html.escape(rel)}: {html.escape(str(e))}</p>')
            continue
        from pipeline.run.figures import class_colours

        legend = ", ".join(f'<span style="color:rgb{tuple(int(v) for v in class_colours(i))}">&#9632;</span> '
                           f"{html.escape(n)}" for i, n in enumerate(names))
        parts.append(img(png, f"{rel}: samples | the extractor's class map | both") + f"<p class='caption'>{legend}</p>")
    return "".join(parts)


def _json(path: Path) -> dict:
    import json

    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


def section_scs(run: Path) -> str | None:
    found = sorted(run.glob("scs*/scs.json"))
    if not found:
        return None
    parts, rows = [], []
    nan = float("nan")
    for f in found:
        d, folder = _json(f), f.parent
        seg = d.get("layout_miou_by_segmenter") or {}
        rows.append([folder.name, d.get("layout_miou_by_lse", nan), seg.get("result", nan),
                     seg.get("unconditioned_mean", nan)])
        parts.append("".join(img(folder / n, f"{folder.name}: {c}") for n, c in (
            ("layout.png", "target layout"), ("start.png", "start"), ("image.png", "result"),
            ("labels.png", "result's labels (LSE)"))))
    return (table(["run", "layout mIoU by the LSE", "layout mIoU by the segmenter", "unconditioned samples"], rows)
            + "".join(parts))


def section_sie(run: Path) -> str | None:
    found = sorted(run.glob("sie*/sie.json"))
    if not found:
        return None
    parts, rows = [], []
    nan = float("nan")
    for f in found:
        d, folder = _json(f), f.parent
        lse, seg = d.get("scores_by_lse") or {}, d.get("scores_by_segmenter") or {}
        rows.append([folder.name, ", ".join(map(str, (d.get("classes") or {}).values())),
                     lse.get("region_fraction_before", nan), lse.get("region_fraction", nan),
                     seg.get("region_miou", nan), lse.get("psnr_outside", nan)])
        parts.append("".join(img(folder / n, f"{folder.name}: {c}") for n, c in (
            ("before.png", "before"), ("paint.png", "painted layout"), ("after.png", "after"),
            ("labels_after.png", "labels after (LSE)"))))
    return (table(["run", "painted class", "region showing it before (LSE)", "after (LSE)",
                   "region IoU (segmenter)", "PSNR outside the region (dB)"], rows) + "".join(parts))


def section_dissection(run: Path) -> str | None:
    found = sorted(run.glob("dissect*/dissection.json"))
    if not found:
        return None
    parts = []
    for f in found:
        d, folder = _json(f), f.parent
        names, levels = d.get("classes") or [], d.get("levels") or []
        if not names or not levels:
            parts.append(f'<p class="missing">{html.escape(f.name)}: not a dissection.json</p>')
            continue
        parts.append(f"<h3>{html.escape(folder.name)}</h3>" + img(folder / "dissection.png",
                     f"units whose best class has IoU >= {d.get('min_iou', 0.04)}, per level ({d.get('n')} samples)"))
        parts.append(table(["level", "units"] + names, [[lv["level"], lv["units"]] + list(lv["matched"])
                                                       for lv in levels if "matched" in lv]))
        best = sorted(((lv["level"], u, c, i) for lv in levels
                       for u, (c, i) in enumerate(zip(lv.get("best_class", []), lv.get("best_iou", [])))),
                      key=lambda r: -r[3])[:10]
        parts.append("<p class='caption'>the ten units of highest IoU (unit-class table: units.csv)</p>"
                     + table(["level", "unit", "class", "IoU"], [list(r) for r in best]))
        for key, what in (("ablation", "ablated"), ("insertion", "inserted")):
            a = d.get(key)
            if not a:
                continue
            if key == "ablation":
                before = a.get("before", [])
                rows = []
                for c, name in enumerate(names):
                    if c < len(before) and before[c]:
                        top = (a["after_top"][c] - before[c]) / before[c]
                        rnd = (a["after_random"][c] - before[c]) / before[c]
                        rows.append([name, int(before[c]), f"{top:+.1%}", f"{rnd:+.1%}"])
                parts.append(f"<p class='caption'>{a['class']}: {len(a['units'])} units of level {a['level']} "
                             f"{what} (selected by {a.get('select', 'iou')}, set to {a.get('value', 'zero')}); goal "
                             f"{'met' if a.get('goal_met') else 'not met'}</p>"
                             + table(["class", "pixels before", "top units ablated", "random units ablated"], rows)
                             + img(folder / "ablation.png", "samples | top units ablated | random units ablated"))
            else:
                parts.append(f"<p class='caption'>{a['class']} inserted in box {a['region']}: inside "
                             f"{a['inside_before']:.1%} -> {a['inside_after']:.1%} of pixels; mean change outside "
                             f"{a['outside_change']:.4f}</p>" + img(folder / "insertion.png", "samples | inserted"))
    return "".join(parts)


def section_timings(run: Path) -> str:
    rows, total = [], 0.0
    for d in sorted(p for p in run.iterdir() if p.is_dir()):
        m = read_manifest(d)
        if m:
            s = m["timings"]["seconds"]
            total += s
            rows.append([m["stage"], s, m["timings"]["started"]])
    rows.sort(key=lambda r: r[2])
    return table(["stage", "seconds"], [r[:2] for r in rows] + [["total", total]])


BUILDERS = {
    "gan": section_gan, "boundaries": section_boundaries, "hierarchy": section_hierarchy,
    "pairs": section_pairs, "translators": section_translators, "strength": section_strength,
    "photos": section_photos, "lse": section_lse, "scs": section_scs, "sie": section_sie,
    "dissection": section_dissection, "timings": section_timings,
}


def build_report(run_dir: str | Path) -> Path:
    """Write `RUN_DIR/report.html` and return its path."""
    run = Path(run_dir)
    if not run.is_dir():
        raise UserError(f"{run}: not a run folder")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>photoedit run report</title>"
             f"<style>{CSS}</style></head><body><h1>photoedit run report</h1>"
             f"<p class='caption'>{html.escape(str(run.resolve()))}</p>"]
    for sid, title in SECTIONS:
        body = BUILDERS[sid](run)
        if body is None:  # an optional section (OPTIONAL) whose files are not here
            continue
        parts.append(f"<section id='{sid}'><h2>{html.escape(title)}</h2>{body}</section>")
    parts.append("</body></html>")
    out = run / "report.html"
    atomic_write_text(out, "".join(parts))
    return out


def summary(run_dir: Path) -> dict:
    """Every finished stage's metrics, for `--json` output of run/quickstart."""
    out = {}
    for d in sorted(p for p in Path(run_dir).iterdir() if p.is_dir()):
        m = read_manifest(d)
        if m:
            out[m["stage"]] = {"seconds": m["timings"]["seconds"], "metrics": m.get("metrics", {})}
    return out
