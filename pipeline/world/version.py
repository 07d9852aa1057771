"""Which world a render came from: a version string that changes whenever the renders do.

Anything trained or measured on world renders (the GAN stage of `photoedit run`, its
evaluation stages) puts `world_version()` in its key, so a changed renderer or scene
sampler re-runs them instead of reusing work done on the old streets. The string is the
hand-kept `WORLD_VERSION` plus a fingerprint of the world's actual output: a few small
renders of every condition (pictures and label maps) and the records of a run of seeds.
Editing a comment changes nothing; changing a colour, a layout rule or the camera does.
"""
from __future__ import annotations

import functools
import hashlib
import json

# Raised by hand with each notable change of the world (readable in manifests):
# 1 the first renderer; 2 issue #13's camera, textures, layouts, rain (session 3);
# 3 bends, cross streets, signs, traffic lights, pedestrians (session 4); 4 ambient occlusion;
# 5 metered exposure, warm night light, neutral snow: Lab statistics of real photos (#12, session 11).
WORLD_VERSION = 5

_SIZE = (48, 96)  # small 2:1 renders: fast, and every layer of the renderer still shows


@functools.lru_cache(maxsize=1)
def world_version() -> str:
    """'3-<12 hex digits>': WORLD_VERSION and a hash of sample renders and records (~0.1 s, once per process)."""
    from pipeline.world.renderer import render
    from pipeline.world.scene import CONDITIONS, EXTRA_CONDITIONS, sample_scene

    h = hashlib.sha256()
    for k, cond in enumerate(CONDITIONS + EXTRA_CONDITIONS + ("random",)):
        for seed in (k, 100 + k):
            r = render(sample_scene(seed, cond), _SIZE)
            h.update(r.image.tobytes())
            h.update(r.masks.tobytes())
    for seed in range(64):  # objects the small renders may not show (far, few)
        h.update(json.dumps(sample_scene(seed, "mixed").to_dict(), sort_keys=True).encode())
    return f"{WORLD_VERSION}-{h.hexdigest()[:12]}"
