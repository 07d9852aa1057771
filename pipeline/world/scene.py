"""The embedded procedural street world: seeded scene records, re-renders, streaming datasets.

A scene is a `SceneParams` record drawn from one seed: lighting (sun elevation and
azimuth, cloud cover, fog, snow), layout (horizon, vanishing point, camera) and the
static objects (buildings, trees, cars, street lights). `render(params, size)` draws it
with numpy/OpenCV (pipeline/world/renderer.py) and returns the picture, its semantic
label map and the attribute scores derived from the lighting record.

`params.with_attribute("night", 1.0)` is the same street with only the lighting or
weather changed: the ground truth "after" picture that later stages measure edits
against. Structure and lighting are drawn from separate random streams of the seed,
so `sample_scene(seed, "night")` and `sample_scene(seed, "day")` are also one street.

Seeds below `HELD_OUT_SEED_START` are for training; evaluation scenes ("streets the GAN
never saw") use seeds at or above it.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import ClassVar, Sequence

import numpy as np

from pipeline.config import plain

ATTRIBUTES = ("sunny", "overcast", "night", "golden_hour", "foggy", "snowy")
CONDITIONS = ("day", "overcast", "golden_hour", "night", "fog", "snow")

# Semantic classes of the label map (value in the label PNG -> name).
LABELS = {
    0: "sky",
    1: "building",
    2: "road",
    3: "sidewalk",
    4: "vegetation",
    5: "car",
    6: "light_source",
    7: "pole",
    8: "terrain",  # grass verges, fields and distant hills
    9: "ego_vehicle",  # the bonnet or dashboard of the car the camera rides in
    10: "traffic_sign",  # the sign plates (their posts are "pole")
    11: "traffic_light",  # the light heads with their lamps (their posts and arms are "pole")
    12: "person",  # pedestrians on the pavements and crossings
}
LABEL_IDS = {name: i for i, name in LABELS.items()}
# Classes whose pixels never move when only lighting or weather changes.
STATIC_LABELS = ("building", "road", "sidewalk", "vegetation", "car", "pole", "terrain", "ego_vehicle",
                 "traffic_sign", "traffic_light", "person")
# Street layouts: a town street between rows of buildings, a suburb of low houses set
# back behind lawns, an open road (motorway or country road) between verges and fields.
LAYOUT_KINDS = ("street", "suburb", "open_road")
# Weather drawn on top of the six conditions: sample_scene(seed, "rain") is a rainy street.
EXTRA_CONDITIONS = ("rain",)

# Aliases accepted by `with_attribute` (condition names and attribute names).
_ATTRIBUTE_ALIASES = {"day": "sunny", "fog": "foggy", "snow": "snowy", "golden-hour": "golden_hour"}


# ----------------------------------------------------------------------------------
# The scene record


@dataclass
class Lighting:
    """Everything that changes between re-renders of one street."""

    sun_elevation: float  # degrees above the horizon; below 0 after sunset, < -10 is night
    sun_azimuth: float  # degrees from the street's direction (0 = straight ahead), + = right
    cloud_cover: float  # 0 clear sky .. 1 fully overcast
    fog_density: float  # 0 clear air .. 1 visibility of about 15 m
    snow: float  # 0 none .. 1 snow-covered ground, falling flakes above 0.5
    rain: float = 0.0  # 0 dry .. 1 downpour: wet road and its reflections, streaks, a darker sky

    @property
    def time_of_day(self) -> float:
        """Approximate local hour: the sun on the left is morning, on the right evening."""
        frac = min(max(self.sun_elevation, -30.0), 60.0) / 60.0
        hours_from_noon = 6.0 * (1.0 - frac)
        return round(12.0 + math.copysign(hours_from_noon, self.sun_azimuth or 1.0), 2) % 24.0


@dataclass
class Layout:
    """Camera and street geometry; fixed under re-rendering."""

    horizon_y: float  # horizon row as a fraction of image height (0 top)
    vanishing_x: float  # vanishing point column as a fraction of image width
    focal: float  # focal length in units of image height
    camera_height: float  # m above the road
    camera_x: float  # m, camera offset from the road's centre line (+ = right)
    road_half_width: float  # m, centre line to kerb
    sidewalk_width: float  # m, kerb to the building line
    kind: str = "street"  # one of LAYOUT_KINDS
    hills: float = 0.0  # height of the distant skyline of hills, fraction of the image height at 0 (none) .. 0.15
    hood: float = 0.0  # share of the image height the camera car's bonnet covers at the centre (0: none, dashcams)
    curve: float = 0.0  # 1 / radius (1/m) of the bend ahead, + = bends right; 0 = straight
    junction_z: float = 0.0  # m to the near edge of a cross street (0 = none)
    junction_width: float = 0.0  # m, width of that cross street
    woods: float = 0.0  # m, height of a belt of woods beside the road (0 = none)
    woods_depth: float = 0.0  # m, how far ahead the woods' edge stands

    def camera_yaw(self, size: tuple[int, int]) -> float:
        """Degrees the camera turns off the street axis to put the vanishing point here."""
        h, w = size
        return math.degrees(math.atan((self.vanishing_x - 0.5) * w / (self.focal * h)))


@dataclass
class Building:
    side: int  # -1 left of the road, +1 right
    z0: float  # m, near end along the street
    z1: float  # m, far end
    height: float  # m
    setback: float  # m behind the building line
    color: tuple[float, float, float]  # facade albedo, RGB in [0, 1]
    floor_height: float  # m between window rows
    window_spacing: float  # m between window columns
    window_width: float  # fraction of the spacing that is glass
    window_height: float  # fraction of the floor that is glass
    lit_fraction: float  # share of windows lit at night
    shop_color: tuple[float, float, float]  # ground-floor awning / shop front colour


@dataclass
class Tree:
    side: int  # -1 left, +1 right sidewalk
    z: float  # m along the street
    trunk_height: float  # m
    crown_radius: float  # m
    color: tuple[float, float, float]  # foliage albedo
    offset: float = 0.0  # m further from the road than the street-tree line


@dataclass
class Car:
    x: float  # m, lateral centre relative to the road's centre line
    z: float  # m, distance of the face nearest the camera
    length: float  # m
    width: float  # m
    height: float  # m
    facing: int  # +1 driving away (rear visible), -1 coming toward (front visible)
    color: tuple[float, float, float]  # body albedo


@dataclass
class StreetLight:
    side: int  # -1 left, +1 right kerb
    z: float  # m along the street
    height: float  # m, lamp head height


@dataclass
class Sign:
    side: int  # -1 left, +1 right kerb
    z: float  # m along the street
    height: float  # m, centre of the plate above the pavement
    size: float  # m, plate width
    kind: int  # index into SIGN_KINDS


# Plate shapes and colours (rim, face): a prohibition disc, a blue mandatory disc, a
# warning triangle, a stop octagon, a blue and a green rectangle (parking, directions).
SIGN_KINDS = ("prohibition", "mandatory", "warning", "stop", "info", "direction")


@dataclass
class TrafficLight:
    side: int  # -1 left, +1 right kerb
    z: float  # m along the street
    height: float  # m, bottom of the head
    state: int  # 0 red, 1 amber, 2 green: the lamp that is on
    overhead: bool = False  # the head hangs over the road from an arm


@dataclass
class Pedestrian:
    x: float  # m, lateral centre relative to the road's centre line
    z: float  # m along the street
    height: float  # m
    color: tuple[float, float, float]  # coat / top
    legs: tuple[float, float, float]  # trousers / skirt
    stride: float  # 0 standing .. 1 mid-stride (legs apart)


@dataclass
class CameraResponse:
    """How the camera turns the scene's light into pixels (pipeline/world/camera.py);
    fixed under re-rendering. The defaults are an ideal camera: no change."""

    exposure: float = 0.0  # stops added to the exposure, about -0.3 .. 0.3
    contrast: float = 1.0  # mid-tone slope of the filmic curve, 0.9 flat .. 1.3 punchy
    white_balance: float = 0.0  # -1 cool (bluish) .. +1 warm (yellowish)
    tint: float = 0.0  # -1 magenta .. +1 green
    vignette: float = 0.0  # darkening at the corners, 0 .. 0.4
    noise: float = 0.0  # sensor noise std (of full scale) in daylight; 3.5x that at night
    blur: float = 0.0  # lens blur, Gaussian sigma in pixels of a 128-px-high picture
    jpeg_quality: int = 0  # 0 = stored losslessly, else the JPEG quality the camera saved at
    metering: bool = False  # lift a dark scene's exposure as a street camera does (camera.metered_gain);
    # every sampled scene meters (world version 5); records from before it lack the field and render as then


@dataclass
class SceneParams:
    """One street scene; JSON-serialisable with `to_dict()` / `from_dict()`."""

    seed: int  # the seed the scene was drawn from
    condition: str  # the condition preset it was drawn under (or "mixed:<preset>")
    lighting: Lighting
    layout: Layout
    buildings: list[Building] = field(default_factory=list)
    trees: list[Tree] = field(default_factory=list)
    cars: list[Car] = field(default_factory=list)
    street_lights: list[StreetLight] = field(default_factory=list)
    texture_seed: int = 0  # cloud, snow and grain patterns; fixed under re-rendering
    camera: CameraResponse = field(default_factory=CameraResponse)  # fixed under re-rendering
    signs: list[Sign] = field(default_factory=list)
    traffic_lights: list[TrafficLight] = field(default_factory=list)
    pedestrians: list[Pedestrian] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["lighting"]["time_of_day"] = self.lighting.time_of_day
        return plain(d, digits=5)

    @classmethod
    def from_dict(cls, d: dict) -> "SceneParams":
        d = dict(d)
        light = {k: v for k, v in d.pop("lighting").items() if k != "time_of_day"}
        return cls(
            seed=int(d["seed"]),
            condition=str(d["condition"]),
            lighting=Lighting(**light),
            layout=Layout(**d["layout"]),
            buildings=[Building(**_tuples(b)) for b in d.get("buildings", [])],
            trees=[Tree(**_tuples(t)) for t in d.get("trees", [])],
            cars=[Car(**_tuples(c)) for c in d.get("cars", [])],
            street_lights=[StreetLight(**s) for s in d.get("street_lights", [])],
            texture_seed=int(d.get("texture_seed", 0)),
            camera=CameraResponse(**d.get("camera", {})),
            signs=[Sign(**x) for x in d.get("signs", [])],
            traffic_lights=[TrafficLight(**x) for x in d.get("traffic_lights", [])],
            pedestrians=[Pedestrian(**_tuples(x)) for x in d.get("pedestrians", [])],
        )

    def attributes(self) -> dict[str, float]:
        return derive_attributes(self.lighting)

    def counts(self) -> dict[str, int]:
        """Objects near enough to be seen (within 80 m): what a counting head should learn."""
        return {
            "cars": sum(1 for c in self.cars if c.z < 80.0),
            "trees": sum(1 for t in self.trees if t.z < 80.0),
            "buildings": len(self.buildings),
            "street_lights": len(self.street_lights),
            "pedestrians": sum(1 for q in self.pedestrians if q.z < 80.0),
            "traffic_signs": sum(1 for q in self.signs if q.z < 80.0),
            "traffic_lights": sum(1 for q in self.traffic_lights if q.z < 80.0),
        }

    def with_lighting(self, **changes: float) -> "SceneParams":
        return dataclasses.replace(self, lighting=dataclasses.replace(self.lighting, **changes))

    def with_attribute(self, name: str, value: float = 1.0) -> "SceneParams":
        """The same street with one attribute set to `value` in [0, 1].

        Only the lighting fields that attribute depends on change, so buildings, road,
        trees and cars stay put. Setting `sunny`, `overcast` or `golden_hour` to 1 also
        clears what would contradict it (night, fog); see `_lighting_for`.
        """
        name = _ATTRIBUTE_ALIASES.get(name, name)
        if name not in ATTRIBUTES:
            raise ValueError(f"unknown attribute '{name}' (known: {', '.join(ATTRIBUTES)})")
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"attribute value must be in [0, 1], got {value}")
        return dataclasses.replace(self, lighting=_lighting_for(self.lighting, name, float(value)))






def _tuples(d: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


# ----------------------------------------------------------------------------------
# Attributes derived from the lighting record


def _smoothstep(e0: float, e1: float, x: float) -> float:
    t = min(max((x - e0) / (e1 - e0), 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


def derive_attributes(light: Lighting) -> dict[str, float]:
    """Attribute scores in [0, 1] that a perfect predictor would output for this scene."""
    el, cloud, fog = light.sun_elevation, light.cloud_cover, light.fog_density
    daylight = _smoothstep(-6.0, 4.0, el)
    clear = 1.0 - _smoothstep(0.15, 0.8, cloud)
    visible = 1.0 - _smoothstep(0.15, 0.6, fog)
    scores = {
        "sunny": _smoothstep(8.0, 20.0, el) * clear * visible,
        "overcast": _smoothstep(0.4, 0.9, cloud) * daylight,
        "night": 1.0 - _smoothstep(-10.0, 0.0, el),
        "golden_hour": _smoothstep(-3.0, 1.0, el) * (1.0 - _smoothstep(9.0, 14.0, el))
        * (1.0 - 0.8 * _smoothstep(0.4, 0.9, cloud)) * visible,
        "foggy": _smoothstep(0.1, 0.6, fog),
        "snowy": _smoothstep(0.1, 0.6, light.snow),
    }
    return {k: round(float(v), 5) for k, v in scores.items()}


def _solve(fn, lo: float, hi: float, target: float) -> float:
    """The x in [lo, hi] with fn(x) closest to target (fn monotone on the interval)."""
    xs = np.linspace(lo, hi, 401)
    ys = np.array([fn(x) for x in xs])
    return float(xs[int(np.argmin(np.abs(ys - target)))])


def _lighting_for(light: Lighting, name: str, v: float) -> Lighting:
    """New lighting with attribute `name` ~= v and everything else kept where possible."""
    rep = dataclasses.replace
    score = lambda lt: derive_attributes(lt)[name]  # noqa: E731
    if name == "night":
        if v >= 0.5:
            el = _solve(lambda e: score(rep(light, sun_elevation=e)), -30.0, 0.0, v)
            return rep(light, sun_elevation=min(el, -12.0) if v >= 0.999 else el)
        day_el = light.sun_elevation if light.sun_elevation > 0 else 35.0
        return rep(light, sun_elevation=_solve(lambda e: score(rep(light, sun_elevation=e)), -10.0, day_el, v))
    if name == "foggy":
        fog = 0.8 if v >= 0.999 else _solve(lambda f: score(rep(light, fog_density=f)), 0.0, 0.6, v)
        return rep(light, fog_density=fog if v > 0.0 else 0.0)
    if name == "snowy":
        snow = 0.85 if v >= 0.999 else _solve(lambda s: score(rep(light, snow=s)), 0.0, 0.6, v)
        # Snow falls instead of rain; the street dries when it is set to none.
        return rep(light, snow=snow if v > 0.0 else 0.0, rain=0.0 if v >= 0.5 else light.rain)
    if name == "overcast":
        base = light if light.sun_elevation > 5.0 else rep(light, sun_elevation=30.0)
        cloud = 1.0 if v >= 0.999 else _solve(lambda c: score(rep(base, cloud_cover=c)), 0.0, 0.9, v)
        return rep(base, cloud_cover=cloud if v > 0.0 else min(base.cloud_cover, 0.3))
    if name == "sunny":
        if v <= 0.0:  # "not sunny": same time of day, clouds drawn over
            return rep(light, cloud_cover=max(light.cloud_cover, 0.9))
        base = rep(light, fog_density=min(light.fog_density, 0.1), rain=0.0,
                   sun_elevation=max(light.sun_elevation, 40.0))
        cloud = 0.05 if v >= 0.999 else _solve(lambda c: score(rep(base, cloud_cover=c)), 0.0, 1.0, v)
        return rep(base, cloud_cover=cloud)
    if name == "golden_hour":
        if v <= 0.0:
            return rep(light, sun_elevation=max(light.sun_elevation, 35.0))
        base = rep(light, cloud_cover=min(light.cloud_cover, 0.3), fog_density=min(light.fog_density, 0.1), rain=0.0)
        el = 4.0 if v >= 0.999 else _solve(lambda e: score(rep(base, sun_elevation=e)), 4.0, 14.0, v)
        return rep(base, sun_elevation=el)
    raise ValueError(name)


# ----------------------------------------------------------------------------------
# Sampling scenes from a seed


def _lighting_preset(condition: str, rng: np.random.Generator) -> Lighting:
    u = rng.uniform
    # The sun ahead of the camera half the time at low elevations, so golden hour
    # often shows the low sun itself; otherwise anywhere around.
    az = float(u(-70, 70) if rng.random() < 0.5 else u(-160, 160))
    haze = float(u(0.0, 0.06))
    presets = {
        "day": lambda: Lighting(u(25, 65), az, u(0.0, 0.3), haze, 0.0),
        "overcast": lambda: Lighting(u(15, 55), az, u(0.9, 1.0), u(0.0, 0.12), 0.0),
        "golden_hour": lambda: Lighting(u(1.0, 7.0), az, u(0.0, 0.35), haze, 0.0),
        "night": lambda: Lighting(u(-30, -13), az, u(0.0, 0.8), u(0.0, 0.1), 0.0),
        "fog": lambda: Lighting(u(8, 50), az, u(0.4, 1.0), u(0.65, 1.0), 0.0),
        "snow": lambda: Lighting(u(12, 45), az, u(0.3, 1.0), u(0.0, 0.15), u(0.65, 1.0)),
        "rain": lambda: Lighting(u(10, 50), az, u(0.88, 1.0), u(0.05, 0.35), 0.0, u(0.5, 1.0)),
    }
    if condition == "random":  # every field independent: scores spread over [0, 1]
        fog = u(0, 1) ** 2 if rng.random() < 0.35 else 0.0
        snow = u(0, 1) if rng.random() < 0.3 else 0.0
        # (the sun no lower than -14 degrees: night scores already reach 1 at -10, and deeper
        # nights with random cloud, fog and snow made `mixed` darker than street photos)
        return Lighting(*(round(float(x), 4) for x in (u(-14, 65), az, u(0, 1), fog, snow)))
    lt = presets[condition]()
    if condition in ("overcast", "night") and rng.random() < 0.25:  # a wet street after rain
        lt.rain = u(0.1, 0.45)
    return Lighting(*(round(float(x), 4) for x in dataclasses.astuple(lt)))


def sample_scene(seed: int, condition: str = "mixed") -> SceneParams:
    """The scene of `seed` under a condition (`day`, `night`, ..., `mixed`, `random`).

    `mixed` picks one of the six presets per seed (70%) or fully independent lighting
    (30%), so attribute scores cover the whole range.
    """
    known = CONDITIONS + EXTRA_CONDITIONS + ("mixed", "random")
    if condition not in known:
        raise ValueError(f"unknown condition '{condition}' (known: {', '.join(known)})")
    seed = int(seed)
    rng_struct = np.random.default_rng([seed, 0])
    rng_light = np.random.default_rng([seed, 1])
    label = condition
    if condition == "mixed":
        condition = str(rng_light.choice(MIXED_CONDITIONS, p=MIXED_WEIGHTS))
        label = f"mixed:{condition}"
    lighting = _lighting_preset(condition, rng_light)
    layout = _sample_layout(rng_struct)
    # Bends, cross streets and street furniture come from a stream of their own, so adding
    # them left every earlier draw (buildings, trees, cars, camera) of a seed as it was.
    rng_furn = np.random.default_rng([seed, 3])
    _sample_bend_and_junction(rng_furn, layout)
    p = SceneParams(
        seed=seed,
        condition=label,
        lighting=lighting,
        layout=layout,
        buildings=_sample_buildings(rng_struct, layout),
        trees=_sample_trees(rng_struct, layout),
        cars=_sample_cars(rng_struct, layout),
        street_lights=_sample_street_lights(rng_struct, layout),
        texture_seed=int(rng_struct.integers(0, 2**31 - 1)),
        camera=_sample_camera(np.random.default_rng([seed, 2])),
    )
    if layout.junction_z > 0:  # the cross street cuts through the rows of buildings, trees and lamps
        a, b = layout.junction_z - 1.0, layout.junction_z + layout.junction_width + 1.0
        p.buildings = [x for x in p.buildings if x.z1 < a or x.z0 > b]
        p.trees = [x for x in p.trees if not a - 1.5 < x.z < b + 1.5]
        p.street_lights = [x for x in p.street_lights if not a < x.z < b]
        kerb = layout.road_half_width - 2.0  # parked cars leave the corners free
        p.cars = [x for x in p.cars if abs(x.x) < kerb or not a - 6.0 < x.z < b + 2.0]
    p.signs = _sample_signs(rng_furn, layout)
    p.traffic_lights = _sample_traffic_lights(rng_furn, layout)
    p.pedestrians = _sample_pedestrians(rng_furn, layout)
    return p


# `mixed` draws conditions about as often as street photos show them (most are taken by
# day; roughly the shares of the 50 photos in ../shared/realphotos*), and a fifth of the
# scenes with every lighting field independent, so attribute scores still cover the whole
# range (predictors and boundaries need the intermediate values).
MIXED_CONDITIONS = ("day", "overcast", "golden_hour", "night", "fog", "snow", "rain", "random")
MIXED_WEIGHTS = (0.24, 0.13, 0.08, 0.11, 0.08, 0.08, 0.08, 0.20)


def _sample_camera(rng: np.random.Generator) -> CameraResponse:
    u = rng.uniform
    return CameraResponse(
        exposure=_r(u(-0.25, 0.25)),
        contrast=_r(u(0.95, 1.25)),
        white_balance=_r(u(-0.25, 0.25)),
        tint=_r(u(-0.15, 0.15)),
        vignette=_r(u(0.0, 0.35)),
        noise=_r(u(0.003, 0.011)),
        blur=_r(u(0.35, 0.75)),
        jpeg_quality=int(rng.integers(60, 95)) if rng.random() < 0.5 else 0,
        metering=True,
    )


def _r(x: float) -> float:
    return round(float(x), 4)


def _sample_layout(rng: np.random.Generator) -> Layout:
    u = rng.uniform
    kind = str(rng.choice(LAYOUT_KINDS, p=(0.55, 0.27, 0.18)))
    half = u(3.0, 10.5) if kind == "open_road" else u(3.2, 7.0)  # open roads: country roads to motorways
    return Layout(
        horizon_y=_r(u(0.36, 0.56)),
        vanishing_x=_r(u(0.32, 0.68)),
        focal=_r(u(0.75, 1.1)),
        camera_height=_r(u(1.3, 2.4)),
        camera_x=_r(u(-0.6, 0.6) * half),
        road_half_width=_r(half),
        sidewalk_width=_r(u(2.0, 4.5)),
        kind=kind,
        hills=_r(u(0.02, 0.15) if kind != "street" and rng.random() < 0.7 else 0.0),
        hood=_r(u(0.06, 0.16) if rng.random() < 0.45 else 0.0),
    )


FACADE_COLORS = np.array([
    [0.62, 0.32, 0.24],  # red brick
    [0.72, 0.45, 0.32],  # light brick
    [0.82, 0.76, 0.62],  # sandstone
    [0.88, 0.86, 0.80],  # white plaster
    [0.60, 0.60, 0.60],  # concrete
    [0.45, 0.45, 0.48],  # dark concrete
    [0.85, 0.72, 0.50],  # ochre
    [0.62, 0.70, 0.72],  # blue-grey
    [0.80, 0.62, 0.58],  # pink plaster
    [0.50, 0.38, 0.30],  # brown
])
CAR_COLORS = np.array([
    [0.85, 0.85, 0.86], [0.08, 0.08, 0.09], [0.45, 0.46, 0.48], [0.65, 0.08, 0.07],
    [0.10, 0.20, 0.50], [0.75, 0.75, 0.72], [0.15, 0.35, 0.20], [0.90, 0.75, 0.10],
])


SHOP_COLORS = np.array([[0.6, 0.1, 0.1], [0.1, 0.3, 0.5], [0.2, 0.4, 0.2], [0.3, 0.3, 0.3], [0.8, 0.6, 0.2]])
FOLIAGE_COLORS = np.array([[0.18, 0.38, 0.12], [0.25, 0.45, 0.15], [0.14, 0.30, 0.12],
                           [0.55, 0.45, 0.12]])  # the last, autumn, is rarer


def _colors(rng: np.random.Generator, palette: np.ndarray, jitter: float, n: int, p=None) -> list[tuple]:
    """n palette colours with a multiplicative jitter, as rounded RGB tuples."""
    base = palette[rng.choice(len(palette), n, p=p)] * rng.uniform(1 - jitter, 1 + jitter, (n, 3))
    return [tuple(c) for c in np.round(np.clip(base, 0.02, 0.98), 4).tolist()]


def _runs(start: float, stop: float, steps: np.ndarray) -> np.ndarray:
    """Positions start, start + steps[0], ... below stop (steps pre-drawn, enough of them)."""
    z = start + np.concatenate([[0.0], np.cumsum(steps)])
    return z[z < stop]


def _rounded(*arrays) -> list[list]:
    return [np.round(np.asarray(a, np.float64), 4).tolist() for a in arrays]


def _sample_buildings(rng: np.random.Generator, layout: Layout) -> list[Building]:
    """Two rows of buildings along the street, drawn as arrays (sampling is on the hot path).

    Suburbs have detached low houses behind lawns; open roads have none."""
    out = []
    if layout.kind == "open_road":
        return out
    suburb = layout.kind == "suburb"
    style_height = rng.uniform(5, 9) if suburb else rng.uniform(8, 30)  # low houses or tall blocks
    for side in (-1, 1):
        k = 40  # 160 m / at least 6 m per building: never more than 27 are used
        widths = rng.uniform(7, 14, k) if suburb else rng.uniform(6, 22, k)
        gaps = np.where(rng.random(k) < (0.8 if suburb else 0.15), rng.uniform(2, 10, k), 0.0)
        z0 = _runs(rng.uniform(-2.0, 6.0), 160.0, (widths + gaps)[:-1])
        n = len(z0)
        w = widths[:n]
        height = np.clip(style_height * rng.uniform(0.5, 1.6, n), 4 if suburb else 5, 60)
        setback = (rng.uniform(3, 10, n) if suburb
                   else np.where(rng.random(n) < 0.3, rng.uniform(0, 1.5, n), 0.0))
        cols = _colors(rng, FACADE_COLORS, 0.12, n)
        shops = _colors(rng, SHOP_COLORS, 0.15, n)
        rows = _rounded(z0, z0 + w, height, setback, rng.uniform(2.9, 3.6, n), rng.uniform(2.2, 3.8, n),
                        rng.uniform(0.35, 0.65, n), rng.uniform(0.4, 0.65, n), rng.uniform(0.1, 0.45, n))
        for i in range(n):
            out.append(Building(side, *(r[i] for r in rows[:4]), cols[i], *(r[i] for r in rows[4:]), shops[i]))
    return out


def _sample_trees(rng: np.random.Generator, layout: Layout) -> list[Tree]:
    """Rows of street trees; open roads have denser, bigger trees further from the road."""
    out = []
    if rng.random() < 0.15:  # some streets have no trees
        return out
    wild = layout.kind == "open_road"
    spacing = rng.uniform(4, 9) if wild else rng.uniform(7, 16)
    for side in (-1, 1):
        if rng.random() < 0.25:
            continue
        z = _runs(rng.uniform(2, spacing), 120.0, spacing * rng.uniform(0.8, 1.25, 40))
        z = z[rng.random(len(z)) < 0.85]  # a gap here and there
        n = len(z)
        rows = _rounded(z, rng.uniform(1.8, 3.0, n), rng.uniform(1.3, 2.6, n) * (1.6 if wild else 1.0),
                        rng.uniform(3.0, 14.0, n) if wild else np.zeros(n))
        cols = _colors(rng, FOLIAGE_COLORS, 0.15, n, p=[0.32, 0.32, 0.32, 0.04])
        out += [Tree(side, rows[0][i], rows[1][i], rows[2][i], cols[i], rows[3][i]) for i in range(n)]
    return out


def _sample_cars(rng: np.random.Generator, layout: Layout) -> list[Car]:
    out = []
    half = layout.road_half_width
    lanes = [(half * 0.45, 1), (-half * 0.45, -1)]  # drive on the right
    if layout.kind == "open_road":  # 3.5 m lanes each way, no parking
        centres = np.arange(1.75, half - 1.0, 3.5)
        lanes = [(float(x), 1) for x in centres] + [(-float(x), -1) for x in centres]
    elif half > 5.0:  # wide streets have parking along the kerbs
        lanes += [(half - 1.2, 1), (-(half - 1.2), -1)]
    for x, facing in lanes:
        z = _runs(rng.uniform(4, 25), 110.0, rng.uniform(7, 30, 16))
        z = z[rng.random(len(z)) < 0.6]
        n = len(z)
        rows = _rounded(x + rng.uniform(-0.3, 0.3, n), z, rng.uniform(3.8, 4.9, n), rng.uniform(1.65, 1.95, n),
                        rng.uniform(1.35, 1.7, n))
        cols = _colors(rng, CAR_COLORS, 0.08, n)
        out += [Car(*(r[i] for r in rows), facing, cols[i]) for i in range(n)]
    return out


def _sample_street_lights(rng: np.random.Generator, layout: Layout) -> list[StreetLight]:
    spacing = rng.uniform(18, 32)
    out = []
    if layout.kind == "open_road" and rng.random() < 0.5:  # many country roads are unlit
        return out
    for side in (-1, 1):
        z = _runs(rng.uniform(3, spacing), 140.0, np.full(8, spacing))
        rows = _rounded(z, rng.uniform(5.5, 8.0, len(z)))
        out += [StreetLight(side, a, b) for a, b in zip(*rows)]
    return out

def parse_size(size: int | str | Sequence[int]) -> tuple[int, int]:
    """128 -> (128, 128); "128x256" -> (128, 256) as (H, W)."""
    if isinstance(size, str):
        parts = size.lower().split("x")
        try:
            dims = [int(p) for p in parts]
        except ValueError:
            raise ValueError(f"size '{size}': expected H or HxW, e.g. 128 or 128x256") from None
    elif isinstance(size, int):
        dims = [size]
    else:
        dims = [int(s) for s in size]
    if len(dims) == 1:
        dims = dims * 2
    if len(dims) != 2 or min(dims) < 8 or max(dims) > 4096:
        raise ValueError(f"size {size}: expected H or HxW with sides between 8 and 4096")
    return dims[0], dims[1]


# ----------------------------------------------------------------------------------
# Config


@dataclass
class WorldConfig:
    size: tuple[int, int] = (64, 64)  # (H, W) of rendered images
    seed: int = 0  # first seed; scene i uses seed + i
    condition: str = "mixed"  # day|overcast|golden_hour|night|fog|snow|rain|mixed|random
    attributes: ClassVar[tuple[str, ...]] = ATTRIBUTES  # what a re-render can set (config checks names here)

    def __post_init__(self):
        self.size = parse_size(self.size)
        known = CONDITIONS + EXTRA_CONDITIONS + ("mixed", "random")
        if self.condition not in known:
            raise ValueError(f"condition '{self.condition}' is not one of {', '.join(known)}")
        if not 0 <= self.seed < 2**62:
            raise ValueError(f"seed {self.seed} must be >= 0")


# ----------------------------------------------------------------------------------
# Bends, cross streets and street furniture (their own stream: [seed, 3])


def _sample_bend_and_junction(rng: np.random.Generator, layout: Layout) -> None:
    """A bend in about a third of the streets (gentle on open roads: motorway radii), a cross
    street ahead in about two in five town streets (fewer elsewhere), and a belt of woods
    beside most open roads and some suburbs; set on `layout`."""
    u = rng.uniform
    kind = layout.kind
    if rng.random() < (0.45 if kind == "open_road" else 0.3):
        radius = u(250, 1500) if kind == "open_road" else u(80, 400)
        layout.curve = _r((1.0 if rng.random() < 0.5 else -1.0) / radius)
    p_junction = {"street": 0.45, "suburb": 0.35, "open_road": 0.12}[kind]
    if rng.random() < p_junction:
        layout.junction_z = _r(u(10, 45))
        layout.junction_width = _r(u(7, 14))
    if rng.random() < {"street": 0.0, "suburb": 0.4, "open_road": 0.75}[kind]:
        layout.woods = _r(u(10, 25))
        layout.woods_depth = _r(u(40, 160))


SIGN_SIZES = (0.65, 0.65, 0.8, 0.7, 0.6, 1.4)  # plate width per SIGN_KINDS entry, m


def _sample_signs(rng: np.random.Generator, layout: Layout) -> list[Sign]:
    """A few road signs on posts at the kerbs, thicker near a cross street."""
    out = []
    n = int(rng.integers(0, 5))
    for _ in range(n):
        side = int(rng.choice((-1, 1)))
        kind = int(rng.choice(len(SIGN_KINDS), p=(0.25, 0.15, 0.2, 0.05, 0.2, 0.15)))
        z = rng.uniform(4, 90)
        if layout.junction_z > 0 and rng.random() < 0.5:  # just before the corner
            z = layout.junction_z - rng.uniform(1.5, 4.0)
            kind = 3 if rng.random() < 0.3 else kind
        size = SIGN_SIZES[kind] * rng.uniform(0.85, 1.15)
        out.append(Sign(side, _r(max(z, 2.0)), _r(rng.uniform(2.0, 2.6) + 0.5 * size), _r(size), kind))
    return out


def _sample_traffic_lights(rng: np.random.Generator, layout: Layout) -> list[TrafficLight]:
    """Signals at the near corners of a cross street, sometimes one over the road; on town
    streets without one, now and then a signalled pedestrian crossing."""
    z = 0.0
    if layout.junction_z > 0 and layout.kind != "open_road" and rng.random() < 0.75:
        z = layout.junction_z - 1.0
    elif layout.junction_z > 0 and layout.kind == "open_road":
        z = layout.junction_z - 1.0 if rng.random() < 0.4 else 0.0
    elif layout.kind == "street" and rng.random() < 0.2:
        z = float(rng.uniform(15, 50))
    if z <= 0:
        return []
    state = int(rng.choice(3, p=(0.45, 0.1, 0.45)))
    out = [TrafficLight(1, _r(z), _r(rng.uniform(2.3, 2.8)), state)]
    if rng.random() < 0.6:
        out.append(TrafficLight(-1, _r(z), _r(rng.uniform(2.3, 2.8)), state))
    if layout.road_half_width > 4.5 and rng.random() < 0.5:
        out.append(TrafficLight(1, _r(z + 0.5), _r(rng.uniform(5.0, 5.8)), state, overhead=True))
    return out


CLOTHES = np.array([[0.08, 0.08, 0.1], [0.2, 0.2, 0.24], [0.35, 0.3, 0.25], [0.15, 0.2, 0.35],
                    [0.55, 0.1, 0.1], [0.7, 0.68, 0.62], [0.3, 0.35, 0.2], [0.45, 0.42, 0.4]])


def _sample_pedestrians(rng: np.random.Generator, layout: Layout) -> list[Pedestrian]:
    """People on the pavements (none on open roads but the odd one on the verge), and some
    crossing at the cross street."""
    busy = {"street": 6, "suburb": 3, "open_road": 1}[layout.kind]
    n = int(rng.integers(0, busy + 1))
    kerb = layout.road_half_width + 0.25
    walk = layout.sidewalk_width if layout.kind == "street" else 2.0
    out = []
    for _ in range(n):
        side = float(rng.choice((-1, 1)))
        x = side * (kerb + rng.uniform(0.4, max(walk - 0.4, 0.5)))
        z = 3.0 + 60.0 * rng.random() ** 1.5  # more of them near: far ones are specks
        if layout.junction_z > 0 and rng.random() < 0.25:  # on the crossing
            x = rng.uniform(-layout.road_half_width, layout.road_half_width)
            z = layout.junction_z - rng.uniform(1.5, 3.5)
        top, legs = _colors(rng, CLOTHES, 0.2, 2)
        out.append(Pedestrian(_r(x), _r(z), _r(rng.uniform(1.55, 1.9)), top, legs, _r(rng.random())))
    return out
