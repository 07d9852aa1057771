"""The embedded procedural street world: scene records (scene), the renderer (renderer),
a streaming dataset (dataset) and folders of renders with ground truth (folder).

The names most code needs are here: `world.sample_scene(seed)`, `world.render(params, size)`,
`world.rerender(params, "night")`. The dataset (torch) and folder writer are imported
from their modules.
"""
from pipeline.world.renderer import Render, contact_sheet, render, render_batch, rerender, scene_record
from pipeline.config import HELD_OUT_SEED_START
from pipeline.world.scene import (ATTRIBUTES, CONDITIONS, LABEL_IDS, LABELS, STATIC_LABELS,
                                  SceneParams, WorldConfig, derive_attributes, parse_size, sample_scene)

__all__ = ["ATTRIBUTES", "CONDITIONS", "HELD_OUT_SEED_START", "LABEL_IDS", "LABELS", "STATIC_LABELS", "Render",
           "SceneParams", "WorldConfig", "contact_sheet", "derive_attributes", "parse_size", "render", "render_batch",
           "rerender", "sample_scene", "scene_record"]
