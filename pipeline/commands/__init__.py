"""One module per CLI verb: parse the arguments, call the library, print; imported lazily."""
from __future__ import annotations

import argparse
import importlib


def run_verb(verb: str, argv: list[str]) -> int:
    """Run `photoedit VERB ARGV...` in this process: the CLI and `photoedit run`'s stages
    both go through here, so a run does exactly what the typed commands do."""
    module = importlib.import_module(f"pipeline.commands.{verb.replace('-', '_')}")
    return int(module.main([str(a) for a in argv]) or 0)


def command_parser(verb: str, doc: str, epilog: str | None = None, whole_doc: bool = False
                   ) -> argparse.ArgumentParser:
    """The parser every verb starts from: `photoedit VERB`, its docstring's first line (or all
    of it) as the description, the epilog's examples printed as written."""
    description = doc if whole_doc else doc.strip().splitlines()[0]
    return argparse.ArgumentParser(prog=f"photoedit {verb}", description=description, epilog=epilog,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def add_gan_argument(group) -> None:
    """`--gan CKPT`, the same words wherever a verb reads a generator."""
    group.add_argument("--gan", required=True, metavar="CKPT", help="generator .safetensors, or a training run folder")


def add_segmenter_argument(group) -> None:
    """`--segmenter FILE`: the labeller of GAN samples, from `photoedit train-segmenter`."""
    group.add_argument("--segmenter", required=True, metavar="FILE", help="labeller of GAN samples (train-segmenter)")


def add_edit_arguments(parser: argparse.ArgumentParser, out_help: str, attribute_required: bool = False):
    """The edit and output options `photoedit --attribute` and `photoedit ray-edit` share;
    returns (edit group, output group) for each verb's own additions."""
    g = parser.add_argument_group("edit")
    g.add_argument("--attribute", "-a", action="append", metavar="NAME", required=attribute_required,
                   help="attribute to apply, e.g. sunny; repeat to apply several in order (see `photoedit list`)")
    g.add_argument("--strength", "-s", default="1.0", metavar="S",
                   help="edit strength: 0 = none, 1 = the strongest edit seen in training; "
                        "one value, or one per attribute separated by commas (default: 1.0)")
    g.add_argument("--models", metavar="DIR", help="folder of translator bundles searched first")
    g.add_argument("--backend", choices=["torch", "onnxruntime"], default="torch",
                   help="run the network with torch, or with onnxruntime from <bundle>/model.onnx "
                        "(`photoedit export`; pip install 'photoedit[onnx]') (default: torch)")
    o = parser.add_argument_group("output")
    o.add_argument("-o", "--out", metavar="OUT", help=out_help)
    o.add_argument("--quality", type=int, default=95, metavar="Q", help="JPEG/WebP quality 1-100 (default: 95)")
    o.add_argument("--overwrite", action="store_true", help="redo outputs that already exist (default: skip)")
    o.add_argument("--max-pixels", type=float, default=200e6, metavar="N",
                   help="refuse images with more pixels (decompression-bomb guard; default: 200e6)")
    o.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    o.add_argument("--dry-run", action="store_true", help="print the settings and planned outputs, edit nothing")
    return g, o


def add_edit_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """--config / --set for the `edit:` section (translators.edit_config.EditConfig)."""
    g = parser.add_argument_group("settings (translators.edit_config.EditConfig)")
    g.add_argument("--config", default=None, metavar="FILE|PRESET",
                   help="YAML file or preset whose `edit:` section overrides EditConfig's defaults "
                        "(default: none, EditConfig's own defaults; --dry-run prints them)")
    g.add_argument("--set", action="append", default=[], metavar="edit.KEY=VALUE",
                   help="override an edit setting, e.g. edit.radius=4 or edit.eps=1e-3 (repeatable)")


def load_gan_and_extractor(gan: str, lse: str, segmenter: str | None):
    """The GAN, its linear semantic extractor and (optionally) the segmenter that judges, as
    `photoedit scs` and `photoedit sie` take them: (G, G's file, extractor, class labels,
    segmenter or None). A file that cannot be read, an extractor made for another image size or
    a segmenter with other classes is a UserError naming the file."""
    from gan.checkpoint import CheckpointError, load_generator, resolve_generator_path
    from pipeline.errors import UserError
    from pipeline.semantics.lse import load_extractor
    from pipeline.semantics.segmenter import SegmenterError, load_segmenter

    try:
        path = resolve_generator_path(gan)
        G = load_generator(path, "cpu").eval().requires_grad_(False)
        ext, labels, _ = load_extractor(lse)
        seg = load_segmenter(segmenter)[0] if segmenter else None
    except (CheckpointError, SegmenterError, ValueError) as e:
        raise UserError(str(e)) from None
    if tuple(ext.cfg.image_size) != tuple(G.resolution):
        raise UserError(f"{lse}: made for {ext.cfg.image_size} images, but {path} draws {list(G.resolution)}")
    if seg is not None and seg.cfg.num_classes != ext.cfg.num_classes:
        raise UserError(f"{segmenter}: {seg.cfg.num_classes} classes, the extractor {ext.cfg.num_classes}")
    return G, path, ext, labels, seg
