"""The street renderer: one function per layer of the picture, numpy/OpenCV only.

How a picture is made (see `render_scene`):
  1. Geometry: every visible surface (road, facades, windows, trees, cars, lamps) is a
     polygon filled with its own id into an id buffer, far to near (painter's order).
     Each id carries a palette row: albedo, label, how much sun it faces (n.l), the
     plane it lies on (for depth), what it emits at night, how much snow it catches.
  2. Gathers: palette[ids] gives albedo, labels and depth per pixel in a few array ops.
  3. Shadows: the sun's direction sweeps roof edges, trees, cars and poles onto the
     ground and onto the facade across the street; one fillPoly each.
  4. Shading: albedo * (sky ambient + sun * n.l * lit), the sky is drawn separately.
  5. Night: lit windows, street lamps, car lights emit; their light pools and glow.
  6. Weather: snow on the ground and on upward surfaces, falling flakes; fog by depth.
Everything random comes from `params.texture_seed`, so re-rendering with other
lighting draws the same clouds, the same lit windows, the same snow patches.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from pipeline.world.camera import develop
from pipeline.world.scene import LABEL_IDS, SceneParams, parse_size, sample_scene
from pipeline.world.surfaces import TEX, texture_multiplier

SHIFT = 4  # fillPoly sub-pixel bits: coordinates are multiplied by 16
ONE = 1 << SHIFT
NEAR = 0.4  # m; geometry nearer than this is clamped (it lies below the image anyway)
ZFAR = 600.0  # m; the road runs this far toward the vanishing point
SKY_DEPTH = 1000.0  # m; depth recorded for sky pixels

LB = LABEL_IDS
# Palette columns.
ALB = slice(0, 3)  # albedo RGB
NDL = 3  # n.l with the sun, clamped to >= 0
PLN = slice(4, 8)  # plane (nx, ny, nz, d) in camera coordinates: n.p = d
EMI = slice(8, 11)  # emitted RGB at full night
SNW = 11  # how much snow the surface catches, 0..1
TXK = 12  # texture kind (surfaces.TEXTURES index)
NCOL = 13


@dataclass
class Camera:
    h: int  # image rows
    w: int  # image columns
    f: float  # focal length in pixels
    hor: float  # horizon row (pixels)
    vp: float  # vanishing point column (pixels)
    height: float  # camera height above the road (m)
    cx: float  # camera lateral position (m, road centre = 0)
    bend: float = 0.0  # 1 / radius of the street's bend (1/m): the world at depth z shifts by bend * z^2 / 2

    def project(self, x, y, z):
        """World points (arrays, m) -> (u, v) pixels; z clamped to NEAR.

        A bent street is the straight one with every point moved sideways by bend * z^2 / 2
        (a parabola: the circle of radius 1 / bend near the camera), so scene records keep
        straight-street coordinates and only the projection knows the bend."""
        z = np.maximum(z, NEAR)
        x = np.asarray(x) - self.cx
        if self.bend:
            x = x + (0.5 * self.bend) * z * z
        return self.vp + self.f * x / z, self.hor + self.f * (self.height - np.asarray(y)) / z

    def straight_x(self, x_cam, z):
        """Camera-frame x (m) at depth z -> the street's own x (road centre = 0), undoing the bend."""
        return x_cam + self.cx - (0.5 * self.bend) * z * z

    def side_plane(self, x, z_mid):
        """Planes (n, d) [n, 4] of walls x = const of the street, tangent at depth z_mid on a bend."""
        x, zm = np.broadcast_arrays(np.asarray(x, np.float32), np.asarray(z_mid, np.float32))
        b = self.bend
        return np.stack([np.ones_like(x), np.zeros_like(x), -b * zm, x - self.cx - 0.5 * b * zm * zm], -1)

    def polys(self, x, y, z) -> np.ndarray:
        """Arrays of shape [..., K] -> int32 polygons [..., K, 2] for fillPoly (shifted)."""
        u, v = self.project(x, y, z)
        pts = np.stack([u, v], -1) * ONE
        return np.clip(pts, -(2**24), 2**24).astype(np.int32)


class Canvas:
    """Id buffer plus one palette row per id (id 0 = sky).

    Ids are handed out in blocks: `add_block(rows [n, k, NCOL], labels [k])` gives
    object i part j the id base[i] + j, so a layer builds every object's palette rows
    with array ops and then only loops to fill polygons in painter's order.
    """

    def __init__(self, cam: Camera):
        self.cam = cam
        self.ids = np.zeros((cam.h, cam.w), np.uint16)
        sky = np.zeros((1, NCOL), np.float32)
        sky[0, PLN] = (0.0, 0.0, 1.0, SKY_DEPTH)
        self.rows = [sky]
        self.labels = [np.zeros(1, np.uint8)]
        self.count = 1
        self.hood_id = -1  # id of the camera car's bonnet, when it has one

    def add_block(self, rows: np.ndarray, labels: list[str]) -> np.ndarray:
        n, k = rows.shape[:2]
        if self.count + n * k >= 65535:
            raise RuntimeError("too many primitives for a uint16 id buffer")
        base = self.count + k * np.arange(n)
        self.rows.append(rows.reshape(n * k, NCOL))
        self.labels.append(np.tile(np.array([LB[x] for x in labels], np.uint8), n))
        self.count += n * k
        return base

    def fill(self, polys: np.ndarray, idx) -> None:
        """polys: int32 [K, 2] (one convex polygon) or [P, K, 2]."""
        if polys.ndim == 2:
            cv2.fillConvexPoly(self.ids, polys, int(idx), cv2.LINE_8, SHIFT)
        elif len(polys):
            cv2.fillPoly(self.ids, polys, int(idx), cv2.LINE_8, SHIFT)

    def palette(self) -> tuple[np.ndarray, np.ndarray]:
        return np.concatenate(self.rows), np.concatenate(self.labels)


def part_rows(n: int, albedo, ndotl, plane, emit=0.0, snow=0.0, tex: str = "smooth") -> np.ndarray:
    """Palette rows [n, NCOL]; every argument broadcasts against n."""
    r = np.zeros((n, NCOL), np.float32)
    r[:, ALB] = albedo
    r[:, NDL] = np.maximum(ndotl, 0.0)
    r[:, PLN] = plane
    r[:, EMI] = emit
    r[:, SNW] = snow
    r[:, TXK] = TEX[tex]
    return r


# ----------------------------------------------------------------------------------
# Light from the record


@dataclass
class Light:
    sun: np.ndarray  # unit vector toward the sun, camera coordinates (x right, y up, z ahead)
    sun_rgb: np.ndarray  # direct sunlight reaching a surface facing the sun
    ambient: np.ndarray  # sky light on every surface
    night: float  # 0 day .. 1 full night: how strongly lamps and windows show
    fog_k: float  # fog extinction per metre
    fog_rgb: np.ndarray
    snow: float
    horizon_rgb: np.ndarray  # sky colour at the horizon
    zenith_rgb: np.ndarray  # sky colour overhead
    cloud_rgb: np.ndarray  # lit colour of clouds


def _ss(e0, e1, x):
    t = min(max((x - e0) / (e1 - e0), 0.0), 1.0)
    return t * t * (3 - 2 * t)


def _mix(a, b, t):
    return np.asarray(a, np.float32) * (1 - t) + np.asarray(b, np.float32) * t


def light_from(params: SceneParams) -> Light:
    lt = params.lighting
    el, az = math.radians(lt.sun_elevation), math.radians(lt.sun_azimuth)
    sun = np.array([math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az)], np.float32)
    cloud, fog = lt.cloud_cover, lt.fog_density
    # 1. How much of the day is left: 0 at night, 1 in full day; "low" marks the warm hours.
    day = _ss(-9.0, 14.0, lt.sun_elevation)
    low = 1.0 - _ss(2.0, 18.0, lt.sun_elevation)
    night = 1.0 - _ss(-9.0, 2.0, lt.sun_elevation)
    # 2. Direct sun: gone under clouds, fog and below the horizon; warm when low.
    direct = _ss(-2.0, 3.0, lt.sun_elevation) * (1 - cloud) ** 1.6 * (1 - 0.85 * _ss(0.0, 0.7, fog))
    sun_rgb = _mix((1.0, 0.93, 0.85), (1.5, 0.78, 0.3), low) * direct
    # 3. Sky light: bluish clear, grey overcast; at night warm lamp light scattered back.
    amb_clear = _mix((0.42, 0.33, 0.34), (0.36, 0.42, 0.52), _ss(2, 20, lt.sun_elevation)) * day
    amb_cloud = np.array((0.62, 0.64, 0.67), np.float32) * day
    # (at night, what the street lamps scatter back from walls, road and a low urban sky: warm)
    ambient = _mix(amb_clear, amb_cloud, cloud ** 1.2) + _mix((0.02, 0.025, 0.045), (0.05, 0.034, 0.016), night)
    # 4. Sky colours (a city's night sky is a low orange-brown, not deep blue), then clouds'
    # colour (lit from below at golden hour).
    zen = _mix(_mix((0.05, 0.04, 0.05), (0.2, 0.28, 0.55), _ss(-8, 4, lt.sun_elevation)),
               (0.24, 0.45, 0.82), _ss(3, 25, lt.sun_elevation))
    hor = _mix(_mix((0.14, 0.09, 0.06), (1.0, 0.62, 0.32), _ss(-8, 0, lt.sun_elevation)),
               (0.72, 0.83, 0.95), _ss(4, 20, lt.sun_elevation))
    grey = _mix((0.06, 0.06, 0.07), (0.72, 0.73, 0.75), day)
    zen = _mix(zen, grey * 0.9, cloud ** 1.5)
    hor = _mix(hor, grey, cloud ** 1.5)
    cloud_rgb = _mix(_mix((0.09, 0.08, 0.09), (1.0, 0.7, 0.55), _ss(-6, 1, lt.sun_elevation)),
                     (0.97, 0.97, 0.98), _ss(6, 20, lt.sun_elevation)) * (1 - 0.35 * cloud)
    # 5. Rain: a darker, lower sky and less light; spray and mist thicken the air.
    rain = lt.rain
    if rain > 0:
        dim = np.float32(1.0 - 0.3 * rain)
        zen, hor, grey, ambient, cloud_rgb = zen * dim, hor * dim, grey * dim, ambient * dim, cloud_rgb * dim
    # 6. Fog takes the horizon's colour; thick fog is light grey by day.
    fog_rgb = _mix(hor, grey * 1.05, 0.6)
    fog_k = 0.15 * fog ** 1.4 + 0.001 + 0.012 * rain
    return Light(sun, sun_rgb, ambient, night, fog_k, fog_rgb, lt.snow, hor, zen, cloud_rgb)


def camera_from(params: SceneParams, h: int, w: int) -> Camera:
    lay = params.layout
    return Camera(h=h, w=w, f=lay.focal * h, hor=lay.horizon_y * h, vp=lay.vanishing_x * w,
                  height=lay.camera_height, cx=lay.camera_x, bend=lay.curve)


# ----------------------------------------------------------------------------------
# 1. Geometry, one function per layer


ASPHALT = (0.25, 0.25, 0.26)
PAVEMENT = (0.55, 0.53, 0.5)
KERB = (0.68, 0.67, 0.64)
PAINT = (0.76, 0.76, 0.72)  # worn road paint
GLASS = (0.16, 0.2, 0.26)  # dark glass that mirrors a little sky
TYRE = (0.05, 0.05, 0.05)
WINDOW_LIGHT = (1.0, 0.76, 0.42)
LAMP_LIGHT = (2.5, 2.1, 1.5)


def _quad(xs, ys, zs):
    """Four corners given per axis (arrays or scalars that broadcast) -> (x, y, z), each [..., 4]."""
    shape = max((np.shape(a) for a in (*xs, *ys, *zs)), key=len)  # arguments are scalars or one shape
    out = np.empty((3,) + shape + (4,), np.float32)
    for k in range(4):
        out[0, ..., k] = xs[k]
        out[1, ..., k] = ys[k]
        out[2, ..., k] = zs[k]
    return out[0], out[1], out[2]


def _quad_x(x, y0, y1, z0, z1):
    """Quads on planes x = const (facades, car sides)."""
    return _quad((x, x, x, x), (y0, y1, y1, y0), (z0, z0, z1, z1))


def _quad_z(x0, x1, y0, y1, z):
    """Quads on planes z = const (faces toward the camera)."""
    return _quad((x0, x1, x1, x0), (y0, y0, y1, y1), (z, z, z, z))


def _quad_y(x0, x1, y, z0, z1):
    """Quads on planes y = const (ground markings, car tops)."""
    return _quad((x0, x1, x1, x0), (y, y, y, y), (z0, z0, z1, z1))


def _stack_parts(*quads) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Several [n, 4] quads -> x, y, z arrays [n, parts, 4]."""
    return tuple(np.stack([q[i] for q in quads], 1) for i in range(3))


GRASS = (0.24, 0.3, 0.15)
HILLS = (0.2, 0.25, 0.2)
HILL_DEPTH = 400.0  # m; the distant skyline of hills and woods


def _strips(cam: Camera, x0, x1, z0: float = NEAR, z1: float = ZFAR) -> np.ndarray:
    """Polygons [P, 4, 2] of ground strips x in [x0, x1] (arrays: one strip each) from z0 to
    z1: one quad each on a straight street, 28 pieces along a bend (each piece straight)."""
    x0, x1 = np.atleast_1d(np.asarray(x0, np.float32)), np.atleast_1d(np.asarray(x1, np.float32))
    if not cam.bend:
        return cam.polys(*_quad_y(x0, x1, 0.0, z0, z1))
    zs = np.geomspace(max(z0, NEAR), z1, 29, dtype=np.float32)
    a, b, za, zb = np.broadcast_arrays(x0[:, None], x1[:, None], zs[None, :-1], zs[None, 1:])
    return cam.polys(*_quad_y(a, b, 0.0, za, zb)).reshape(-1, 4, 2)


def draw_ground(cv: Canvas, p: SceneParams, light: Light) -> None:
    """Distant hills, the ground beside the road (pavement in town, lawns and verges
    elsewhere), kerbs, the road and its markings."""
    cam, lay = cv.cam, p.layout
    ground = (0.0, 1.0, 0.0, -cam.height)
    ndl = float(light.sun[1])
    rw, kerb = lay.road_half_width, lay.road_half_width + 0.25
    rows = np.stack([part_rows(1, PAVEMENT, ndl, ground, snow=1.0, tex="pavement")[0],
                     part_rows(1, KERB, ndl, ground, snow=1.0, tex="pavement")[0],
                     part_rows(1, ASPHALT, ndl, ground, snow=0.75, tex="asphalt")[0],
                     part_rows(1, PAINT, ndl, ground, snow=0.75, tex="paint")[0],
                     part_rows(1, GRASS, ndl, ground, snow=1.0, tex="grass")[0],
                     part_rows(1, HILLS, 0.3, (0.0, 0.0, 1.0, HILL_DEPTH), snow=0.8, tex="grass")[0],
                     part_rows(1, WOODS, 0.3, (0.0, 0.0, 1.0, max(lay.woods_depth, 1.0)), snow=0.5,
                               tex="foliage")[0]])
    base = int(cv.add_block(rows[None], ["sidewalk", "sidewalk", "road", "road", "terrain", "terrain",
                                         "vegetation"])[0])
    # 1. Hills: a wavy skyline above the horizon, behind everything else.
    if lay.hills > 0:
        k = 17
        prof = np.random.default_rng([p.texture_seed, 7]).random(k)
        prof = np.convolve(np.concatenate([prof[-2:], prof, prof[:2]]), np.ones(5) / 5, "valid")
        xs = np.linspace(-0.05, 1.05, k) * cam.w
        ys = cam.hor - lay.hills * cam.h * (0.35 + 0.9 * (prof - prof.min()) / max(np.ptp(prof), 1e-6))
        pts = np.concatenate([np.stack([xs, ys], 1), [[xs[-1], cam.hor + 2], [xs[0], cam.hor + 2]]])
        cv2.fillPoly(cv.ids, [(pts * ONE).astype(np.int32)], base + 5, cv2.LINE_8, SHIFT)
    # 2. Pavement (town) or grass (suburb, open road) everywhere below the horizon.
    below = (np.array([[-1e5, cam.hor + 0.02], [1e5, cam.hor + 0.02], [1e5, 1e5], [-1e5, 1e5]]) * ONE).astype(np.int32)
    cv.fill(below, base if lay.kind == "street" else base + 4)
    if lay.woods > 0:  # a belt of woods either side, the road running through a gap in it
        _draw_woods(cv, p, base + 6)
    if lay.kind == "suburb":  # a pavement strip between the kerb and the lawns
        cv.fill(_strips(cam, np.array([-kerb - 2.0, kerb]), np.array([-kerb, kerb + 2.0])), base)
    # 3. Kerbs (not on open roads) and the road on top.
    if lay.kind != "open_road":
        cv.fill(_strips(cam, -kerb, kerb), base + 1)
    cv.fill(_strips(cam, -rw, rw), base + 2)
    # 4. Markings: a dashed centre line (3 m paint, 6 m gap), lane lines every 3.5 m on
    # wide roads, and solid edge lines.
    z0 = np.arange(1.0, 160.0, 9.0)
    lanes = np.concatenate([[0.0], np.arange(3.5, rw - 1.5, 3.5), -np.arange(3.5, rw - 1.5, 3.5)])
    lx = lanes[:, None] + np.zeros_like(z0)[None]
    lz = np.zeros_like(lanes)[:, None] + z0[None]
    dashes = cam.polys(*_quad_y(lx - 0.08, lx + 0.08, 0.0, lz, lz + 3.0)).reshape(-1, 4, 2)
    edges = _strips(cam, np.array([-rw + 0.3, rw - 0.42]), np.array([-rw + 0.42, rw - 0.3]))
    cv.fill(np.concatenate([dashes, edges]), base + 3)
    # 5. A cross street: asphalt across everything at its depth, a zebra crossing and a
    # stop line before it.
    jz, jw = lay.junction_z, lay.junction_width
    if jz > 0:
        cv.fill(cam.polys(*_quad_y(-300.0, 300.0, 0.0, jz, jz + jw)), base + 2)
        xs = np.arange(-rw + 0.5, rw - 0.5, 1.0, dtype=np.float32)
        zebra = cam.polys(*_quad_y(xs, xs + 0.5, 0.0, jz - 3.5, jz - 0.5))
        stop = cam.polys(*_quad_y(0.0, rw - 0.3, 0.0, jz - 4.1, jz - 3.8))
        cv.fill(np.concatenate([zebra, stop[None]]), base + 3)


WOODS = (0.13, 0.22, 0.1)  # a mass of trees: darker than one lit crown


def _draw_woods(cv: Canvas, p: SceneParams, idx: int) -> None:
    """Two bands of woods standing at woods_depth: from the ground there up to a bumpy line
    of crowns (woods m tall), left and right of the road's gap."""
    cam, lay = cv.cam, p.layout
    d, top = lay.woods_depth, lay.woods
    k = 48
    bumps = np.random.default_rng([p.texture_seed, 8]).random((2, k))
    gap = lay.road_half_width + 4.0
    for side, bump in zip((-1.0, 1.0), bumps):
        # the band's edge at the gap, then out to 400 m sideways (far beyond the picture)
        x = side * (gap + np.geomspace(0.1, 400.0, k))
        y = top * (0.75 + 0.25 * bump)
        u, v = cam.project(x, y, np.full(k, d))
        u0, v0 = cam.project(x, np.zeros(k), np.full(k, d))
        pts = np.concatenate([np.stack([u, v], 1), np.stack([u0, v0], 1)[::-1]])
        cv2.fillPoly(cv.ids, [np.clip(pts * ONE, -(2**24), 2**24).astype(np.int32)], idx, cv2.LINE_8, SHIFT)


HOOD = (0.06, 0.06, 0.07)  # dark paint or dashboard


def draw_hood(cv: Canvas, p: SceneParams, light: Light) -> None:
    """The camera car's bonnet: a dark, gently curved band along the bottom, nearest of all.
    Its top mirrors the sky, so it is shaded as a glossy surface facing up."""
    hood = p.layout.hood
    if hood <= 0:
        return
    cam = cv.cam
    rows = part_rows(1, HOOD, float(light.sun[1]) * 0.5, (0.0, 0.0, 1.0, 1.0), snow=0.0, tex="paint")
    base = int(cv.add_block(rows[None], ["ego_vehicle"])[0])
    xs = np.linspace(-0.02, 1.02, 17) * cam.w
    bulge = 1.0 - 0.5 * ((xs / cam.w - 0.5) * 2.0) ** 2  # highest at the centre
    ys = cam.h * (1.0 - hood * bulge)
    pts = np.concatenate([np.stack([xs, ys], 1), [[xs[-1], cam.h + 2], [xs[0], cam.h + 2]]])
    cv2.fillPoly(cv.ids, [(pts * ONE).astype(np.int32)], base, cv2.LINE_8, SHIFT)
    cv.hood_id = base


def _building_table(p: SceneParams) -> np.ndarray:
    cols = [[b.side, b.z0, b.z1, b.height, b.setback, *b.color, b.floor_height, b.window_spacing,
             b.window_width, b.window_height, b.lit_fraction, *b.shop_color] for b in p.buildings]
    return np.array(cols, np.float32).reshape(-1, 16)


def draw_buildings(cv: Canvas, p: SceneParams, light: Light, rng: np.random.Generator) -> None:
    """Facades far to near; each: end wall, facade, cornice, shop front, awning, windows."""
    cam, lay = cv.cam, p.layout
    t = _building_table(p)
    wins = _window_grid(t, rng)  # drawn for every building so the stream never shifts
    order = np.argsort(-t[:, 1], kind="stable")
    order = order[t[order, 2] > NEAR]
    if not len(order):
        return
    b = t[order]
    n = len(b)
    side, z0, z1, hgt, col, shop = b[:, 0], b[:, 1], b[:, 2], b[:, 3], b[:, 5:8], b[:, 13:16]
    x = side * (lay.road_half_width + lay.sidewalk_width + b[:, 4])
    ndl = -side * float(light.sun[0])  # left facades face +x
    facade = cam.side_plane(x, 0.5 * (np.maximum(z0, NEAR) + z1))
    end = np.stack([np.zeros(n), np.zeros(n), np.ones(n), np.maximum(z0, NEAR)], 1)
    sa, sb = z0 + 0.6, z1 - 0.6
    has_shop = sb - sa > 1.5
    # 1. Palette: 7 ids per building.
    rows = np.stack([
        part_rows(n, col * 0.9, float(-light.sun[2]), end, tex="facade"),
        part_rows(n, col, ndl, facade, tex="facade"),
        part_rows(n, col * 0.72, ndl, facade, snow=0.9, tex="facade"),
        part_rows(n, np.asarray(GLASS) + 0.08, ndl * 0.3, facade,
                  emit=np.asarray(WINDOW_LIGHT) * (0.06 + 0.25 * (b[:, 12:13] > 0.3))),
        part_rows(n, shop, ndl, facade, snow=0.6, tex="paint"),
        part_rows(n, np.asarray(GLASS) + 0.12 * col, ndl * 0.25, facade),
        part_rows(n, np.asarray(GLASS) + 0.12 * col, ndl * 0.25, facade, emit=WINDOW_LIGHT),
    ], 1)
    base = cv.add_block(rows, ["building"] * 7)
    # 2. Polygons of the five big parts.
    polys = cam.polys(*_stack_parts(
        _quad_z(x, x + side * 14.0, 0.0, hgt, z0),
        _quad_x(x, 0.0, hgt, z0, z1),
        _quad_x(x, hgt - 0.45, hgt, z0, z1),
        _quad_x(x, 0.3, 2.5, sa, sb),
        _quad_x(x, 2.5, 3.0, sa, sb),
    ))
    # The end wall shows only where the nearer neighbour on that side stands further
    # back or leaves a gap; shop fronts only where they are over a pixel tall.
    end_visible = _end_walls_visible(b)
    # Far facades seen almost edge-on are under half a pixel wide: only their end walls show.
    facade_px = cam.f * np.abs(x - cam.cx) * (1.0 / np.maximum(z0, NEAR) - 1.0 / np.maximum(z1, NEAR))
    wide = facade_px >= 0.5
    has_shop &= cam.f * 2.7 / np.maximum(sa, NEAR) > 1.0
    # 3. Windows of the drawn buildings, grouped per building and lit state.
    wpolys, wstart = _window_polys(cam, wins, order, x)
    fill = cv.fill
    for i in range(n):
        if end_visible[i]:
            fill(polys[i, 0], base[i])
        if not wide[i]:
            continue
        fill(polys[i, 1], base[i] + 1)
        fill(polys[i, 2], base[i] + 2)
        if has_shop[i]:
            fill(polys[i, 3], base[i] + 3)
            fill(polys[i, 4], base[i] + 4)
        a, m, e = wstart[i]
        cv.fill(wpolys[a:m], base[i] + 5)
        cv.fill(wpolys[m:e], base[i] + 6)


def _end_walls_visible(b: np.ndarray) -> np.ndarray:
    """b: building rows sorted far to near. True where the wall facing the camera can show."""
    vis = np.ones(len(b), bool)
    for side in (-1.0, 1.0):
        idx = np.flatnonzero(b[:, 0] == side)
        idx = idx[np.argsort(b[idx, 1])]  # near to far along the street
        for near, far in zip(idx[:-1], idx[1:]):
            touching = b[near, 2] >= b[far, 1] - 0.05
            vis[far] = not touching or b[near, 4] > b[far, 4] or b[near, 3] < b[far, 3]
    return vis


def _window_grid(t: np.ndarray, rng: np.random.Generator) -> dict:
    """Every window of every building as flat arrays (building index, y0, y1, z0, z1, lit)."""
    floors = np.maximum(((t[:, 3] - 1.0) // t[:, 8]).astype(int) - 1, 0)  # upper floors only
    cols = np.maximum(((t[:, 2] - t[:, 1]) // t[:, 9]).astype(int), 0)
    counts = floors * cols
    total = int(counts.sum())
    bi = np.repeat(np.arange(len(t)), counts)
    local = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    c = np.maximum(cols[bi], 1)
    fl, co = local // c + 1, local % c
    fh, wh, ww = t[bi, 8], t[bi, 11], t[bi, 10]
    span = (t[bi, 2] - t[bi, 1]) / c
    zc = t[bi, 1] + (co + 0.5) * span
    y0 = fl * fh + fh * (1 - wh) * 0.6
    lit = rng.random(total) < t[bi, 12]
    return {"b": bi, "y0": y0, "y1": y0 + fh * wh, "za": zc - 0.5 * span * ww, "zb": zc + 0.5 * span * ww,
            "lit": lit, "size": fh * wh}


def _window_polys(cam: Camera, w: dict, order: np.ndarray, x: np.ndarray):
    """Polygons of visible windows sorted by (draw position, lit) and per-building slices."""
    rank = np.full(int(order.max()) + 1 if len(order) else 0, -1)
    rank[order] = np.arange(len(order))
    bi = w["b"]
    r = rank[bi] if len(bi) else bi
    # Windows under a pixel tall are left out: far facades read as their own colour.
    keep = (r >= 0) & (cam.f * w["size"] / np.maximum((w["za"] + w["zb"]) / 2, NEAR) > 1.2)
    r, lit = r[keep], w["lit"][keep]
    key = r * 2 + lit
    srt = np.argsort(key, kind="stable")
    key = key[srt]
    sel = np.flatnonzero(keep)[srt]
    polys = cam.polys(*_quad_x(x[r[srt]], w["y0"][sel], w["y1"][sel], w["za"][sel], w["zb"][sel]))
    bounds = np.searchsorted(key, np.arange(2 * len(order) + 1))
    starts = [(bounds[2 * i], bounds[2 * i + 1], bounds[2 * i + 2]) for i in range(len(order))]
    return polys, starts


def tree_x(p: SceneParams, side, offset=0.0) -> np.ndarray:
    return np.asarray(side) * (p.layout.road_half_width + 0.25 + 0.45 * p.layout.sidewalk_width + np.asarray(offset))


def street_light_x(p: SceneParams, side) -> np.ndarray:
    return np.asarray(side) * (p.layout.road_half_width + 0.55)


def draw_objects(cv: Canvas, p: SceneParams, light: Light, rng: np.random.Generator) -> None:
    """Trees, cars, street lights, signs, traffic lights and people, far to near so nearer
    ones cover farther ones."""
    blobs = rng.uniform(-1, 1, (len(p.trees), 4, 3))  # crown shapes, independent of lighting
    drawers = [_tree_drawer(cv, p, light, blobs), _car_drawer(cv, p, light), _light_drawer(cv, p, light),
               _sign_drawer(cv, p, light), _signal_drawer(cv, p, light), _person_drawer(cv, p, light)]
    items = [(t.z, 0, i) for i, t in enumerate(p.trees)] + [(c.z, 1, i) for i, c in enumerate(p.cars)] \
        + [(s.z, 2, i) for i, s in enumerate(p.street_lights)] + [(s.z, 3, i) for i, s in enumerate(p.signs)] \
        + [(s.z, 4, i) for i, s in enumerate(p.traffic_lights)] + [(s.z, 5, i) for i, s in enumerate(p.pedestrians)]
    for z, kind, i in sorted(items, key=lambda it: (-it[0], it[1])):
        if z + 5.0 > NEAR:
            drawers[kind](i)


def _tree_drawer(cv: Canvas, p: SceneParams, light: Light, blobs: np.ndarray):
    """Trunk, a crown of overlapping shaded blobs, and a lit cap offset toward the sun."""
    cam, n = cv.cam, len(p.trees)
    if not n:
        return lambda i: None
    t = np.array([[tr.side, tr.z, tr.trunk_height, tr.crown_radius, *tr.color, tr.offset] for tr in p.trees],
                 np.float32)
    x, z, r = tree_x(p, t[:, 0], t[:, 7]), np.maximum(t[:, 1], NEAR), t[:, 3]
    plane = np.stack([np.zeros(n), np.zeros(n), np.ones(n), z], 1)
    col = t[:, 4:7]
    rows = np.stack([part_rows(n, (0.28, 0.2, 0.14), float(-light.sun[2]) * 0.5, plane, tex="facade"),
                     part_rows(n, col * 0.8, 0.25, plane, snow=0.45, tex="foliage"),
                     part_rows(n, col, 0.95, plane, snow=0.6, tex="foliage")], 1)
    base = cv.add_block(rows, ["vegetation"] * 3)
    trunk = cam.polys(*_quad_z(x - 0.15, x + 0.15, 0.0, t[:, 2] + 0.5, z))
    cy = t[:, 2] + 0.8 * r
    centres = np.concatenate([np.tile([[[0.0, 0.0, 1.0]]], (n, 1, 1)), blobs[:, :4] * [0.6, 0.45, 0.25] + [0, 0, 0.6],
                              np.tile([[[0.0, 0.3, 0.65]]], (n, 1, 1))], 1)  # [n, 6, 3]; last = lit cap
    # (the cap stays put under any sun, so the vegetation mask is the same in every re-render)
    u, v = cam.project(x[:, None] + centres[..., 0] * r[:, None], cy[:, None] + centres[..., 1] * r[:, None], z[:, None])
    rad = np.maximum(cam.f * centres[..., 2] * r[:, None] / z[:, None] * ONE, ONE / 2).astype(int)
    cu = np.clip(u * ONE, -(2**24), 2**24).astype(int)
    cvv = np.clip(v * ONE, -(2**24), 2**24).astype(int)

    small = rad[:, 0] < 3 * ONE  # crowns under 3 px: one disc is enough
    circle, ids = cv2.circle, cv.ids

    def draw(i):
        cv.fill(trunk[i], base[i])
        for k in ((0,) if small[i] else range(5)):
            circle(ids, (int(cu[i, k]), int(cvv[i, k])), int(rad[i, k]), int(base[i] + 1), -1, cv2.LINE_8, SHIFT)
        circle(ids, (int(cu[i, 5]), int(cvv[i, 5])), int(rad[i, 5]), int(base[i] + 2), -1, cv2.LINE_8, SHIFT)
    return draw


CAR_PARTS = ["top", "side", "side_glass", "tyre", "face", "face_glass", "roof", "lamp"]


def _car_drawer(cv: Canvas, p: SceneParams, light: Light):
    """Body top, the side toward the camera (glass, wheels), the near face, roof, lamps."""
    cam, n, s = cv.cam, len(p.cars), light.sun
    if not n:
        return lambda i: None
    c = np.array([[k.x, k.z, k.length, k.width, k.height, k.facing, *k.color] for k in p.cars], np.float32)
    x, L, wd, hgt, facing, col = c[:, 0], c[:, 2], c[:, 3], c[:, 4], c[:, 5], c[:, 6:9]
    zn, zf = np.maximum(c[:, 1], NEAR), c[:, 1] + L
    xl, xr = x - wd / 2, x + wd / 2
    yb = 0.25 + 0.45 * hgt  # top of the body (bonnet/boot line)
    right = x - cam.cx < 0  # cars left of the camera show their right side
    side_x = np.where(right, xr, xl)
    has_side = np.abs(x - cam.cx) > wd / 2
    side_ndl = np.where(right, s[0], -s[0])
    zeros, ones = np.zeros(n), np.ones(n)
    side_plane = cam.side_plane(side_x, 0.5 * (zn + zf))
    face_plane = np.stack([zeros, zeros, ones, zn], 1)
    lamp_col = np.where(facing[:, None] > 0, [[0.55, 0.05, 0.05]], [[0.85, 0.85, 0.8]])
    lamp_emit = np.where(facing[:, None] > 0, [[1.6, 0.12, 0.08]], [[1.8, 1.7, 1.4]])
    rows = np.stack([
        part_rows(n, col, float(s[1]), np.stack([zeros, ones, zeros, yb - cam.height], 1), snow=0.9, tex="paint"),
        part_rows(n, col * 0.92, side_ndl, side_plane, tex="paint"),
        part_rows(n, GLASS, side_ndl * 0.3, side_plane),
        part_rows(n, TYRE, 0.0, face_plane),
        part_rows(n, col * 0.95, float(-s[2]), face_plane, tex="paint"),
        part_rows(n, GLASS, 0.15, face_plane),
        part_rows(n, col, float(s[1]), np.stack([zeros, ones, zeros, hgt - cam.height], 1), snow=1.0),
        part_rows(n, lamp_col, float(-s[2]), face_plane, emit=lamp_emit),
    ], 1)
    base = cv.add_block(rows, ["car"] * len(CAR_PARTS))
    inset = np.where(right, -0.12, 0.12)
    glass_x = np.stack([xl + 0.12, xr - 0.12, xr - 0.22, xl + 0.22], 1)
    glass_y = np.stack([yb, yb, hgt, hgt], 1)
    glass_z = (zn[:, None] + L[:, None] * np.array([0.15, 0.15, 0.32, 0.32]))
    side_gz = zn[:, None] + L[:, None] * np.array([0.2, 0.32, 0.78, 0.88])
    w1, w2 = zn + 0.18 * L, zn + 0.82 * L
    polys = cam.polys(*_stack_parts(
        _quad_y(xl, xr, yb, zn, zf),  # 0 top
        _quad_x(side_x, 0.22, yb, zn, zf),  # 1 side
        (np.repeat((side_x + inset)[:, None], 4, 1), np.stack([yb, hgt, hgt, yb], 1), side_gz),  # 2 side glass
        _quad_x(side_x, 0.0, 0.62, w1 - 0.32, w1 + 0.32),  # 3 wheels on the side
        _quad_x(side_x, 0.0, 0.62, w2 - 0.32, w2 + 0.32),  # 4
        _quad_z(xl + 0.25, xl + 0.55, 0.0, 0.3, zn + 0.3),  # 5 tyres under the near face
        _quad_z(xr - 0.55, xr - 0.25, 0.0, 0.3, zn + 0.3),  # 6
        _quad_z(xl, xr, 0.22, yb, zn),  # 7 near face
        (glass_x, glass_y, glass_z),  # 8 rear/front window sloping back
        _quad_y(xl + 0.22, xr - 0.22, hgt, zn + 0.32 * L, zn + 0.78 * L),  # 9 roof
        _quad_z(xl + 0.1, xl + 0.4, yb - 0.28, yb - 0.1, zn - 0.01),  # 10 lamps
        _quad_z(xr - 0.4, xr - 0.1, yb - 0.28, yb - 0.1, zn - 0.01),  # 11
    ))
    tiny = cam.f * wd / zn < 4.0  # cars under 4 px wide: body only
    fill = cv.fill

    def draw(i):
        b, q = base[i], polys[i]
        fill(q[0], b)
        if tiny[i]:
            fill(q[7], b + 4)
            return
        if has_side[i]:
            fill(q[1], b + 1)
            fill(q[2], b + 2)
            fill(q[3:5], b + 3)
        fill(q[5:7], b + 3)
        fill(q[7], b + 4)
        fill(q[8], b + 5)
        fill(q[9], b + 6)
        fill(q[10:12], b + 7)
    return draw


def _light_drawer(cv: Canvas, p: SceneParams, light: Light):
    """Pole, arm over the road, lamp head (a light source that emits at night)."""
    cam, n = cv.cam, len(p.street_lights)
    if not n:
        return lambda i: None
    t = np.array([[s.side, s.z, s.height] for s in p.street_lights], np.float32)
    side, z, hgt = t[:, 0], np.maximum(t[:, 1], NEAR), t[:, 2]
    x = street_light_x(p, side)
    arm = x - side * 1.6
    plane = np.stack([np.zeros(n), np.zeros(n), np.ones(n), z], 1)
    grey = (0.2, 0.21, 0.22)
    rows = np.stack([part_rows(n, grey, 0.3, plane, tex="paint"),
                     part_rows(n, (0.8, 0.8, 0.7), 0.3, plane, emit=LAMP_LIGHT)], 1)
    base = cv.add_block(rows, ["pole", "light_source"])
    polys = cam.polys(*_stack_parts(
        _quad_z(x - 0.08, x + 0.08, 0.0, hgt, z),
        _quad_z(np.minimum(x, arm), np.maximum(x, arm), hgt - 0.1, hgt, z),
        _quad_z(arm - 0.3, arm + 0.3, hgt - 0.3, hgt - 0.05, z - 0.01),
    ))

    def draw(i):
        cv.fill(polys[i, :2], base[i])
        cv.fill(polys[i, 2], base[i] + 1)
    return draw


def kerb_post_x(p: SceneParams, side) -> np.ndarray:
    """x of sign posts and signal poles: just behind the kerb (a step further on open roads)."""
    return np.asarray(side) * (p.layout.road_half_width + (1.2 if p.layout.kind == "open_road" else 0.6))


def _ngon(k: int, phase: float = 0.0) -> np.ndarray:
    a = phase + np.arange(k) * (2 * np.pi / k)
    return np.stack([np.sin(a), np.cos(a)], 1).astype(np.float32)  # [k, 2] (x, y), unit radius


# Plate outlines (x, y) in units of half the plate width, 12 vertices each (repeated
# vertices for fewer corners), and (rim, face) colours per scene.SIGN_KINDS entry.
_SQUARE = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float32)
SIGN_SHAPES = np.stack([
    _ngon(12), _ngon(12), np.repeat(_ngon(3, np.pi) * [1.0, 1.0] + [0.0, 0.25], 4, 0),
    np.repeat(_ngon(8, np.pi / 8), [2, 1, 2, 1, 2, 1, 2, 1], 0) * 1.08, np.repeat(_SQUARE, 3, 0),
    np.repeat(_SQUARE * [1.0, 0.55], 3, 0)])
SIGN_COLORS = np.array([
    [[0.75, 0.08, 0.08], [0.9, 0.9, 0.88]], [[0.85, 0.86, 0.88], [0.1, 0.28, 0.65]],
    [[0.75, 0.08, 0.08], [0.92, 0.9, 0.86]], [[0.9, 0.9, 0.9], [0.72, 0.07, 0.07]],
    [[0.88, 0.88, 0.9], [0.1, 0.3, 0.68]], [[0.88, 0.88, 0.9], [0.05, 0.42, 0.22]]], np.float32)


def _sign_drawer(cv: Canvas, p: SceneParams, light: Light):
    """A grey post and a plate facing the camera: the rim, and the face inset inside it."""
    cam, n = cv.cam, len(p.signs)
    if not n:
        return lambda i: None
    t = np.array([[s.side, s.z, s.height, s.size, s.kind] for s in p.signs], np.float32)
    x, z, hgt, half = kerb_post_x(p, t[:, 0]), np.maximum(t[:, 1], NEAR), t[:, 2], t[:, 3] / 2
    kind = t[:, 4].astype(int)
    plane = np.stack([np.zeros(n), np.zeros(n), np.ones(n), z], 1)
    ndl = float(-light.sun[2]) * 0.7 + 0.3 * max(float(light.sun[1]), 0.0)
    rows = np.stack([part_rows(n, (0.45, 0.46, 0.47), 0.3, plane, tex="paint"),
                     part_rows(n, SIGN_COLORS[kind, 0], ndl, plane, snow=0.3),
                     part_rows(n, SIGN_COLORS[kind, 1], ndl, plane, snow=0.3)], 1)
    base = cv.add_block(rows, ["pole", "traffic_sign", "traffic_sign"])
    shape = SIGN_SHAPES[kind]  # [n, 12, 2]
    rim = cam.polys(x[:, None] + shape[..., 0] * half[:, None], hgt[:, None] + shape[..., 1] * half[:, None],
                    np.repeat(z[:, None] - 0.01, 12, 1))
    face = cam.polys(x[:, None] + shape[..., 0] * half[:, None] * 0.78,
                     hgt[:, None] + shape[..., 1] * half[:, None] * 0.78, np.repeat(z[:, None] - 0.02, 12, 1))
    post = cam.polys(*_quad_z(x - 0.035, x + 0.035, 0.0, hgt, z))
    small = cam.f * t[:, 3] / z < 2.5  # plates under 2.5 px: the rim's colour alone

    def draw(i):
        cv.fill(post[i], base[i])
        cv.fill(rim[i], base[i] + 1)
        if not small[i]:
            cv.fill(face[i], base[i] + 2)
    return draw


SIGNAL_RGB = np.array([[1.0, 0.12, 0.08], [1.0, 0.6, 0.05], [0.15, 1.0, 0.45]], np.float32)  # red, amber, green


def _signal_drawer(cv: Canvas, p: SceneParams, light: Light):
    """A pole (with an arm over the road for overhead ones), a dark head and three lamps,
    the one that is on bright by day and emitting at night."""
    cam, n = cv.cam, len(p.traffic_lights)
    if not n:
        return lambda i: None
    t = np.array([[s.side, s.z, s.height, s.state, s.overhead] for s in p.traffic_lights], np.float32)
    side, z, hgt, state, over = t[:, 0], np.maximum(t[:, 1], NEAR), t[:, 2], t[:, 3].astype(int), t[:, 4] > 0
    pole_x = kerb_post_x(p, side)
    head_x = np.where(over, side * 0.45 * p.layout.road_half_width, pole_x)
    plane = np.stack([np.zeros(n), np.zeros(n), np.ones(n), z], 1)
    on = np.eye(3, dtype=bool)[state]  # [n, 3]
    lamp_alb = np.where(on[..., None], SIGNAL_RGB[None], SIGNAL_RGB[None] * 0.12 + 0.03)  # [n, 3, 3]
    lamp_emit = np.where(on[..., None], SIGNAL_RGB[None] * 1.6, 0.0)
    rows = np.stack([part_rows(n, (0.2, 0.21, 0.22), 0.3, plane, tex="paint"),
                     part_rows(n, (0.05, 0.05, 0.05), 0.2, plane, snow=0.5)]
                    + [part_rows(n, lamp_alb[:, k] * 2.0, 0.0, plane, emit=lamp_emit[:, k]) for k in range(3)], 1)
    base = cv.add_block(rows, ["pole", "traffic_light", "traffic_light", "traffic_light", "traffic_light"])
    top = hgt + 0.95
    pole_top = np.where(over, top + 0.1, top)
    lamp = _ngon(8, np.pi / 8) * 0.11
    ys = np.stack([hgt + 0.8, hgt + 0.475, hgt + 0.15], 1)  # red on top
    polys = cam.polys(*_stack_parts(
        _quad_z(pole_x - 0.06, pole_x + 0.06, 0.0, pole_top, z + 0.02),
        _quad_z(np.minimum(pole_x, head_x), np.maximum(pole_x, head_x), top, top + 0.1, z + 0.02),
        _quad_z(head_x - 0.17, head_x + 0.17, hgt, top, z),
    ))
    lamps = cam.polys(head_x[:, None, None] + lamp[None, None, :, 0], ys[..., None] + lamp[None, None, :, 1],
                      np.broadcast_to(z[:, None, None] - 0.01, (n, 3, 8)))
    small = cam.f * 0.34 / z < 3.0  # heads under 3 px: the lit lamp alone

    def draw(i):
        cv.fill(polys[i, 0], base[i])
        if over[i]:
            cv.fill(polys[i, 1], base[i])
        cv.fill(polys[i, 2], base[i] + 1)
        for k in range(3):
            if on[i, k] or not small[i]:
                cv.fill(lamps[i, k], base[i] + 2 + k)
    return draw


SKIN = (0.5, 0.38, 0.3)


def _person_drawer(cv: Canvas, p: SceneParams, light: Light):
    """A silhouette facing the camera: two legs (apart when walking), a torso with arms, a head."""
    cam, n = cv.cam, len(p.pedestrians)
    if not n:
        return lambda i: None
    t = np.array([[q.x, q.z, q.height, *q.color, *q.legs, q.stride] for q in p.pedestrians], np.float32)
    x, z, H, top, legs, stride = t[:, 0], np.maximum(t[:, 1], NEAR), t[:, 2], t[:, 3:6], t[:, 6:9], t[:, 9]
    plane = np.stack([np.zeros(n), np.zeros(n), np.ones(n), z], 1)
    ndl = float(-light.sun[2]) * 0.6 + 0.2
    rows = np.stack([part_rows(n, legs, ndl, plane, tex="facade"),
                     part_rows(n, top, ndl, plane, snow=0.2, tex="facade"),
                     part_rows(n, SKIN, ndl, plane)], 1)
    base = cv.add_block(rows, ["person"] * 3)
    hip, sh = 0.48 * H, 0.82 * H
    spread = (0.05 + 0.12 * stride) * H
    zz = np.stack([z] * 4, 1)
    leg_l = (np.stack([x - 0.09 * H, x - 0.01 * H, x - spread + 0.06 * H, x - spread - 0.01 * H], 1),
             np.stack([hip, hip, np.zeros(n), np.zeros(n)], 1), zz)
    leg_r = (np.stack([x + 0.01 * H, x + 0.09 * H, x + spread + 0.01 * H, x + spread - 0.06 * H], 1),
             np.stack([hip, hip, np.zeros(n), np.zeros(n)], 1), zz)
    torso = (np.stack([x - 0.1 * H, x + 0.1 * H, x + 0.14 * H, x - 0.14 * H], 1),
             np.stack([hip - 0.02 * H, hip - 0.02 * H, sh, sh], 1), zz)
    head = _ngon(8, np.pi / 8)
    hq = (x[:, None] + head[None, :, 0] * 0.07 * H[:, None],
          (0.905 * H)[:, None] + head[None, :, 1] * 0.085 * H[:, None], np.repeat(z[:, None] - 0.01, 8, 1))
    body = cam.polys(*_stack_parts(leg_l, leg_r, torso))
    heads = cam.polys(*hq)
    whole = cam.polys(*_quad_z(x - 0.12 * H, x + 0.12 * H, 0.0, H, z))
    tiny = cam.f * H / z < 5.0  # people under 5 px tall: one dark sliver

    def draw(i):
        if tiny[i]:
            cv.fill(whole[i], base[i] + 1)
            return
        cv.fill(body[i, :2], base[i])
        cv.fill(body[i, 2], base[i] + 1)
        cv.fill(heads[i], base[i] + 2)
    return draw


def lamp_positions(p: SceneParams) -> np.ndarray:
    """[L, 3] world positions (x, y, z) of the lamp heads."""
    return np.array([[float(street_light_x(p, s.side)) - s.side * 1.6, s.height - 0.3, s.z] for s in p.street_lights],
                    np.float32).reshape(-1, 3)

# ----------------------------------------------------------------------------------
# 3. Shadows


def _sweeps(x0, x1, z0, z1, height, dx, dz):
    """Ground shadow of boxes [x0,x1]x[z0,z1] of given heights: the lifted footprint
    translated by the sun offset plus the band each footprint edge sweeps. [..., 4] x/z arrays."""
    ox, oz = dx * height, dz * height
    corners_x = np.stack([x0, x1, x1, x0], -1)
    corners_z = np.stack([z0, z0, z1, z1], -1)
    quads_x, quads_z = [corners_x + ox[..., None]], [corners_z + oz[..., None]]
    for a in range(4):
        b = (a + 1) % 4
        ax, az, bx, bz = corners_x[..., a], corners_z[..., a], corners_x[..., b], corners_z[..., b]
        quads_x.append(np.stack([ax, bx, bx + ox, ax + ox], -1))
        quads_z.append(np.stack([az, bz, bz + oz, az + oz], -1))
    return np.concatenate(quads_x, 0), np.concatenate(quads_z, 0)


def draw_shadows(p: SceneParams, cam: Camera, light: Light) -> tuple[np.ndarray, np.ndarray]:
    """(ground shadow, facade shadow) uint8 masks, 255 = in shadow."""
    ground = np.zeros((cam.h, cam.w), np.uint8)
    facade = np.zeros((cam.h, cam.w), np.uint8)
    s = light.sun
    if s[1] < 0.02 or float(light.sun_rgb.max()) < 0.02:
        return ground, facade
    dx, dz = -s[0] / s[1], -s[2] / s[1]  # ground offset per metre of height
    lay = p.layout
    line = lay.road_half_width + lay.sidewalk_width
    polys = []
    # 1. Buildings as boxes 14 m deep behind their facade.
    if p.buildings:
        b = np.array([[bb.side, bb.z0, bb.z1, bb.height, bb.setback] for bb in p.buildings], np.float32)
        x_face = b[:, 0] * (line + b[:, 4])
        xa, xb = np.minimum(x_face, x_face + b[:, 0] * 14), np.maximum(x_face, x_face + b[:, 0] * 14)
        qx, qz = _sweeps(xa, xb, b[:, 1], b[:, 2], b[:, 3], np.float32(dx), np.float32(dz))
        polys.append(cam.polys(qx, 0.0, qz))
        # The shadow that reaches the facade across the street: a band below the line
        # where the roof edge's shadow meets that facade.
        across = b[:, 0] * -1 * line
        facing = (-b[:, 0] * s[0]) < 0  # the sun is behind this row of buildings
        t = np.abs(across - x_face) / max(abs(float(s[0])), 1e-3)
        y = b[:, 3] - t * s[1]
        ok = facing & (y > 0) & (abs(float(s[0])) > 0.02)
        if ok.any():
            zs0, zs1 = b[ok, 1] - t[ok] * s[2], b[ok, 2] - t[ok] * s[2]
            fq = cam.polys(*_quad_x(across[ok], 0.0, y[ok], zs0, zs1))
            cv2.fillPoly(facade, list(fq), 255, cv2.LINE_8, SHIFT)
    # 2. Cars as boxes.
    if p.cars:
        c = np.array([[cc.x, cc.z, cc.length, cc.width, cc.height] for cc in p.cars], np.float32)
        qx, qz = _sweeps(c[:, 0] - c[:, 3] / 2, c[:, 0] + c[:, 3] / 2, c[:, 1], c[:, 1] + c[:, 2], c[:, 4] * 0.9,
                         np.float32(dx), np.float32(dz))
        polys.append(cam.polys(qx, 0.0, qz))
    # 3. Tree crowns (ellipses stretched along the sun) and trunks; lamp poles.
    if p.trees:
        tr = np.array([[tree_x(p, t.side, t.offset), t.z, t.trunk_height, t.crown_radius] for t in p.trees],
                      np.float32)
        cy = tr[:, 2] + 0.8 * tr[:, 3]
        th = np.linspace(0, 2 * np.pi, 10, endpoint=False, dtype=np.float32)
        hx, hz = -dx, -dz
        norm = max(math.hypot(hx, hz), 1e-6)
        par = np.array([hx, hz]) / norm
        stretch = min(1.0 / max(float(s[1]), 0.1), 6.0)
        ex = (np.cos(th)[None] * -par[1] + np.sin(th)[None] * par[0] * stretch) * tr[:, 3:4]
        ez = (np.cos(th)[None] * par[0] + np.sin(th)[None] * par[1] * stretch) * tr[:, 3:4]
        polys.append(cam.polys(tr[:, :1] + dx * cy[:, None] + ex, 0.0, tr[:, 1:2] + dz * cy[:, None] + ez))
        qx, qz = _sweeps(tr[:, 0] - 0.15, tr[:, 0] + 0.15, tr[:, 1] - 0.15, tr[:, 1] + 0.15, tr[:, 2],
                         np.float32(dx), np.float32(dz))
        polys.append(cam.polys(qx[len(tr):], 0.0, qz[len(tr):]))
    if p.street_lights:
        sl = np.array([[street_light_x(p, q.side), q.z, q.height] for q in p.street_lights], np.float32)
        qx, qz = _sweeps(sl[:, 0] - 0.08, sl[:, 0] + 0.08, sl[:, 1] - 0.08, sl[:, 1] + 0.08, sl[:, 2],
                         np.float32(dx), np.float32(dz))
        polys.append(cam.polys(qx[len(sl):], 0.0, qz[len(sl):]))
    # 4. Sign posts, signal poles (thin boxes) and people (boxes a shoulder wide).
    posts = [[float(kerb_post_x(p, q.side)), q.z, q.height, 0.05] for q in p.signs] \
        + [[float(kerb_post_x(p, q.side)), q.z, q.height + 1.0, 0.08] for q in p.traffic_lights] \
        + [[q.x, q.z, q.height, 0.2 * q.height] for q in p.pedestrians]
    if posts:
        pt = np.array(posts, np.float32)
        qx, qz = _sweeps(pt[:, 0] - pt[:, 3], pt[:, 0] + pt[:, 3], pt[:, 1] - 0.1, pt[:, 1] + 0.1, pt[:, 2],
                         np.float32(dx), np.float32(dz))
        polys.append(cam.polys(qx[len(pt):], 0.0, qz[len(pt):]))
    cv2.fillPoly(ground, [q for arr in polys for q in arr], 255, cv2.LINE_8, SHIFT)
    return ground, facade


# ----------------------------------------------------------------------------------
# Sky


_NOISE_CACHE: dict[tuple[int, int], np.ndarray] = {}


def _grain(h: int, w: int, seed: int) -> np.ndarray:
    """A fixed noise tile per size, read at a seed-dependent offset (cheap, deterministic)."""
    key = (h, w)
    if key not in _NOISE_CACHE:
        tile = np.random.default_rng(12345).standard_normal((2 * h, 2 * w)).astype(np.float32)
        # Stored as the multiplier itself: 1 + 3% of unit-variance film grain.
        _NOISE_CACHE[key] = 1.0 + 0.03 * cv2.GaussianBlur(tile, (3, 3), 0.6) * 1.6
    tile = _NOISE_CACHE[key]
    oy, ox = seed % h, (seed // h) % w
    return tile[oy:oy + h, ox:ox + w]


def _fbm(rng: np.random.Generator, h: int, w: int, base: tuple[int, int]) -> np.ndarray:
    """Smooth value noise in [0, 1]: three octaves of random grids summed at a quarter of
    the size, then one upsampling."""
    sh, sw = max(h // 4, 2), max(w // 4, 2)
    out = np.zeros((sh, sw), np.float32)
    amp, total = 1.0, 0.0
    gh, gw = base
    for _ in range(3):
        grid = rng.random((gh + 1, gw + 1), dtype=np.float32)
        out += amp * cv2.resize(grid, (sw, sh), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= 0.5
        gh, gw = gh * 2, gw * 2
    out = cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(out * (1.0 / total), 0.0, 1.0, out=out)


def draw_sky(p: SceneParams, cam: Camera, light: Light, rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Sky colour for image rows [0, rows) and the sun-disc mask there.

    The smooth parts (gradient, clouds, glow) are computed at half resolution and
    upsampled; the sun disc and stars are drawn at full resolution afterwards.
    """
    w = cam.w
    lt = p.lighting
    sh, sw = max((rows + 1) // 2, 1), max((w + 1) // 2, 1)
    v = (np.arange(sh, dtype=np.float32) * (rows / sh))[:, None]
    u = (np.arange(sw, dtype=np.float32) * (w / sw))[None, :]
    # 1. Gradient from the horizon colour to the zenith colour.
    # (a low sun warms a tall band of sky above the horizon: the gradient turns slowly)
    golden = _ss(-4.0, 1.0, lt.sun_elevation) * (1.0 - _ss(8.0, 16.0, lt.sun_elevation))
    t = np.clip((cam.hor - v) / max(cam.hor, 1.0), 0.0, 1.0) ** (0.55 + 1.2 * golden)
    grad = light.horizon_rgb * (1 - t[..., None]) + light.zenith_rgb * t[..., None]  # [sh, 1, 3]
    if light.night > 0:  # city glow near the horizon
        grad = grad + (light.night * 0.12 * (1 - t) ** 3)[..., None] * np.array([1.0, 0.6, 0.3], np.float32)
    # 2. Clouds: wide, flat noise; coverage sets the threshold.
    noise = _fbm(rng, sh, sw, (2, 5))
    cover = lt.cloud_cover
    alpha = np.clip((noise - (0.78 - 0.75 * cover)) * (1 / 0.22), 0.0, 1.0) * min(1.0, 0.3 + 1.2 * cover)
    cloud = light.cloud_rgb * (0.8 + 0.35 * (noise[..., None] - 0.5))
    sky = grad + alpha[..., None] * (cloud - grad)
    # 3. Sun glow when the sun is ahead of the camera.
    s = light.sun
    sun_ahead = s[2] > 0.05 and s[1] > -0.05
    vis = (1 - cover) ** 2 * (1 - light.fog_k / 0.15)
    if sun_ahead:
        us, vs = cam.vp + cam.f * s[0] / s[2], cam.hor - cam.f * s[1] / s[2]
        d = np.sqrt((u - us) ** 2 + (v - vs) ** 2)
        sky += np.exp(d * (-1.0 / (0.25 * cam.f)))[..., None] * (vis * (light.sun_rgb * 0.9 + 0.1))
    sky = cv2.resize(sky.astype(np.float32), (w, rows), interpolation=cv2.INTER_LINEAR)
    # 4. Sun disc, full resolution.
    disc = np.zeros((rows, w), np.uint8)
    if sun_ahead and vis > 0.15:
        cv2.circle(disc, (int(us * ONE), int(vs * ONE)), int(0.03 * cam.f * ONE), 1, -1, cv2.LINE_8, SHIFT)
        sky[disc > 0] = np.minimum(1.0, light.sun_rgb * 1.3 + 0.3)
    # 5. Stars on clear nights.
    if light.night > 0.5 and cover < 0.6:
        k = int(rows * w * 0.004)
        ys, xs = rng.integers(0, rows, k), rng.integers(0, w, k)
        sky[ys, xs] += (0.5 * light.night * (1 - cover) * rng.random(k, dtype=np.float32))[:, None]
    return sky, disc > 0


# ----------------------------------------------------------------------------------
# The whole picture


_OCCLUDERS = np.isin(np.arange(256), [LB[n] for n in ("building", "car", "vegetation", "person", "ego_vehicle")])
_OCCLUDED = np.isin(np.arange(256), [LB[n] for n in ("road", "sidewalk", "terrain")])
AO_STRENGTH = 0.1  # sky light lost by a ground pixel with occluders over half its window


def ambient_occlusion(labels: np.ndarray, h: int) -> np.ndarray:
    """float32 [H, W] factor in [1 - AO_STRENGTH, 1]: ground pixels lose sky light in proportion
    to the share of occluders (walls, cars, trees, people) around them, over a window ~1/24 of
    the image height; every other pixel keeps 1."""
    k = max(3, (h // 24) | 1)
    near = cv2.blur(_OCCLUDERS[labels].astype(np.float32), (k, k))
    return (1.0 - (2.0 * AO_STRENGTH) * np.minimum(near, 0.5) * _OCCLUDED[labels]).astype(np.float32)


def render_scene(p: SceneParams, h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image uint8 [H,W,3], labels uint8 [H,W], depth float32 [H,W])."""
    cam = camera_from(p, h, w)
    light = light_from(p)
    # One random stream per layer, so a layer that is skipped under some lighting
    # (snow, stars) never shifts the patterns of the others.
    streams = [np.random.default_rng([p.texture_seed, k]) for k in range(4)]
    # 1. Geometry into the id buffer.
    cv = Canvas(cam)
    draw_ground(cv, p, light)
    draw_buildings(cv, p, light, streams[0])
    draw_objects(cv, p, light, streams[0])
    draw_hood(cv, p, light)
    ids = cv.ids
    pal, lab = cv.palette()
    labels = np.take(lab, ids)
    depth = depth_map(ids, pal, cam)
    # 2. Light each palette entry once (ambient part, sun part) instead of every pixel.
    ground_ids = (lab == LB["road"]) | (lab == LB["sidewalk"]) | (lab == LB["terrain"])
    snow = _ss(0.05, 0.7, light.snow)
    wet = _ss(0.05, 0.6, p.lighting.rain)
    albedo = pal[:, ALB]
    if wet > 0:  # wet asphalt and paving darken
        albedo = albedo * (1.0 - 0.4 * wet * ((lab == LB["road"]) | (lab == LB["sidewalk"])))[:, None]
    if snow > 0:  # upward surfaces whiten; the ground gets patches and wheel tracks below
        catch = np.where(ground_ids, 0.0, pal[:, SNW] * snow)[:, None]
        albedo = albedo + catch * (SNOW_WHITE - albedo)
    ambient_pal = albedo * light.ambient
    sun_pal = albedo * pal[:, NDL:NDL + 1] * light.sun_rgb
    # 3. Shadows: ground shadows fall on ground and cars, facade shadows on buildings.
    sun_on = float(light.sun_rgb.max()) > 0.01
    img = np.take(ambient_pal, ids, axis=0)
    # Ambient occlusion (sky light only): the ground darkens where walls, cars and kerb-side
    # objects stand over it (the corners where a facade meets the pavement, under parked cars).
    img *= ambient_occlusion(labels, h)[..., None]
    if sun_on:
        g_sh, f_sh = draw_shadows(p, cam, light)
        shadow = np.where(labels == LB["building"], f_sh, g_sh)
        lit = 1.0 - cv2.blur(shadow, (3, 3)).astype(np.float32) * (1.0 / 255.0)
        img += np.take(sun_pal, ids, axis=0) * lit[..., None]
    else:
        lit = None
    # Texture before the ground's snow: fresh snow hides the asphalt's grain.
    img *= texture_multiplier(np.take(pal[:, TXK].astype(np.uint8), ids), p.texture_seed)[..., None]
    if snow > 0:
        img = add_ground_snow(img, ids, pal, ground_ids, lit, depth, cam, p, light, snow, streams[1])
    if p.layout.hood > 0:  # the bonnet's gloss mirrors the sky, brightest at its far edge
        on = (ids == cv.hood_id).astype(np.float32)
        fall = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None] ** 4
        img += (on * (0.25 * (1.0 - fall)))[..., None] * light.horizon_rgb
    if wet > 0:
        add_wet_sheen(img, ids, lab, depth, light, wet)
    # 4. Night: emitters, lamp light pools, the car's own headlights, glow.
    if light.night > 0.01:
        img = add_night_lights(img, ids, pal, lab, depth, cam, p, light, wet)
    # 5. Sky behind everything, with the sun disc marked as a light source.
    rows = int(min(h, max(0, math.ceil(cam.hor + 1))))
    if rows > 0:
        sky, disc = draw_sky(p, cam, light, streams[2], rows)
        top = ids[:rows] == 0
        img[:rows][top] = sky[top]
        labels[:rows][top & disc] = LB["light_source"]
    # 6. Weather: fog by depth, then falling snow in front of everything.
    # Fog is capped at 250 m so a thin haze tints the sky instead of erasing it.
    keep = np.exp(np.minimum(depth, 250.0) * -light.fog_k)[..., None]
    img -= light.fog_rgb
    img *= keep
    img += light.fog_rgb
    if light.snow > 0.5:
        add_falling_snow(img, light, streams[3])
    if p.lighting.rain > 0.4:
        add_falling_rain(img, light, p.lighting.rain, p.texture_seed)
    # 7. The camera: exposure, white balance, vignette, blur, noise, tone curve, JPEG.
    image = develop(img, p.camera, light.night, p.texture_seed)
    return image, labels, depth


SNOW_WHITE = np.array([0.95, 0.95, 0.94], np.float32)  # neutral: real snow photos are no bluer than day ones


def depth_map(ids: np.ndarray, pal: np.ndarray, cam: Camera) -> np.ndarray:
    """Metres along the view axis: each id's plane n.p = d intersected with the pixel's ray."""
    h, w = ids.shape
    ru = ((np.arange(w, dtype=np.float32) - cam.vp) / cam.f)[None, :]
    rv = ((cam.hor - np.arange(h, dtype=np.float32)) / cam.f)[:, None]
    pl = np.take(np.ascontiguousarray(pal[:, PLN]), ids, axis=0)
    den = pl[..., 0] * ru + pl[..., 1] * rv + pl[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = pl[..., 3] / den
    # A plane seen edge-on or from behind gives a useless ratio: treat it as far.
    depth[~(depth > 0)] = SKY_DEPTH
    return np.clip(depth, NEAR, SKY_DEPTH, out=depth)


def ground_xz(depth: np.ndarray, cam: Camera) -> np.ndarray:
    """World x (m from the road's centre) of each pixel, from its depth."""
    ru = ((np.arange(cam.w, dtype=np.float32) - cam.vp) / cam.f)[None, :]
    return cam.straight_x(ru * depth, depth)


def add_ground_snow(img, ids, pal, ground_ids, lit, depth, cam: Camera, p: SceneParams, light: Light, snow: float,
                    rng) -> np.ndarray:
    """Patchy snow on pavement and road, with two dark wheel tracks per lane."""
    h, w = ids.shape
    patches = _fbm(rng, h, w, (3, 6))
    x = ground_xz(depth, cam)
    lane = p.layout.road_half_width * 0.45
    d = np.minimum(np.abs(np.abs(x) - lane - 0.8), np.abs(np.abs(x) - lane + 0.8))
    on_road = np.take((pal[:, SNW] < 0.8) & ground_ids, ids)
    tracks = np.exp(-(d * d) / 0.08) * on_road
    cover = np.take(np.where(ground_ids, pal[:, SNW], 0.0).astype(np.float32), ids) * snow
    cover = np.clip(cover * (0.8 + 0.7 * patches) - 0.3 * tracks, 0.0, 1.0)
    # Lit snow minus lit ground, per palette entry, blended in by cover.
    delta = SNOW_WHITE - pal[:, ALB]
    light_px = light.ambient + (0.0 if lit is None else
                                np.take(pal[:, NDL], ids)[..., None] * lit[..., None] * light.sun_rgb)
    return img + np.take(delta, ids, axis=0) * light_px * cover[..., None]


def add_wet_sheen(img, ids, lab, depth, light: Light, wet: float) -> None:
    """A wet road mirrors the sky, more at grazing angles (far away) than underfoot."""
    road = np.take(((lab == LB["road"]) | (lab == LB["sidewalk"])).astype(np.float32), ids)
    fresnel = road * (1.0 - np.exp(depth * (-1.0 / 25.0))) * (0.45 * wet)
    img += fresnel[..., None] * (0.5 * light.horizon_rgb + 0.5 * light.zenith_rgb)


HEADLIGHTS = np.array([1.0, 0.95, 0.85], np.float32)  # the camera car's own low beams


def add_night_lights(img, ids, pal, lab, depth, cam: Camera, p: SceneParams, light: Light,
                     wet: float = 0.0) -> np.ndarray:
    night = light.night
    h, w = depth.shape
    sh, sw = max(h // 4, 1), max(w // 4, 1)
    # 1. Light at quarter resolution for speed: pools of the street lamps (lamp colour)
    # and the camera car's low beams on the road ahead (white).
    d_small = cv2.resize(depth, (sw, sh), interpolation=cv2.INTER_NEAREST)
    ru = ((np.arange(sw, dtype=np.float32) * (w / sw) - cam.vp) / cam.f)[None, :]
    rv = ((cam.hor - np.arange(sh, dtype=np.float32) * (h / sh)) / cam.f)[:, None]
    Xc = ru * d_small  # camera frame: the low beams point straight ahead
    X = cam.straight_x(Xc, d_small)  # the street's frame: where the lamps stand
    Y = cam.height + rv * d_small
    lamps = lamp_positions(p)
    lamps = lamps[(lamps[:, 2] > 0) & (lamps[:, 2] < 70)]
    pool = np.zeros((sh, sw), np.float32)
    for lx, ly, lz in lamps:
        pool += 6.0 / (6.0 + (X - lx) ** 2 + (Y - ly) ** 2 + (d_small - lz) ** 2)
    beam = (np.exp(-0.5 * (Xc * (1.0 / (2.0 + 0.12 * d_small))) ** 2) * (Y < 1.2)
            / (1.0 + (d_small * (1.0 / 14.0)) ** 2) * (d_small > 2.5)).astype(np.float32)
    lamp_rgb = np.array([1.0, 0.82, 0.55], np.float32) * night * 0.6
    light_small = pool[..., None] * lamp_rgb + beam[..., None] * (HEADLIGHTS * night * 0.3)
    light_px = cv2.resize(light_small, (w, h), interpolation=cv2.INTER_LINEAR)
    # Lamps shine down: walls and car sides catch a third of what the road does.
    facing_up = 0.35 + 0.65 * np.abs(pal[:, PLN.start + 1:PLN.start + 2])
    img = img + np.take(pal[:, ALB] * facing_up, ids, axis=0) * light_px
    # 2. Emitters: lit windows, lamp heads, car lights, and a soft glow around them; on a
    # wet road their reflections stretch down toward the camera.
    emit = np.take(pal[:, EMI] * night, ids, axis=0)
    img += emit
    small = cv2.resize(emit, (sw, sh), interpolation=cv2.INTER_AREA)
    glow = 0.35 * cv2.GaussianBlur(small, (0, 0), 1.5)
    if wet > 0:
        streak = cv2.blur(small, (1, 5), anchor=(0, 0))  # each light smeared over the rows below it
        road = cv2.resize(np.take((lab == LB["road"]).astype(np.float32), ids), (sw, sh),
                          interpolation=cv2.INTER_AREA)
        glow += (0.8 * wet) * streak * road[..., None]
    img += cv2.resize(glow, (w, h), interpolation=cv2.INTER_LINEAR)
    return img


_RAIN: dict[tuple[int, int], np.ndarray] = {}


def add_falling_rain(img: np.ndarray, light: Light, rain: float, seed: int) -> None:
    """Thin slanted streaks of falling rain, lit by the ambient light (a fixed streak
    tile per size, read at the scene's offset)."""
    h, w = img.shape[:2]
    if (h, w) not in _RAIN:
        rng = np.random.default_rng(777)
        drops = (rng.random((2 * h, 2 * w)) < 0.004).astype(np.float32)
        k = max(3, h // 20)
        kernel = np.zeros((k, k), np.float32)
        kernel[np.arange(k), np.clip(np.arange(k) // 3, 0, k - 1)] = 1.0 / k
        _RAIN[(h, w)] = np.clip(cv2.filter2D(drops, -1, kernel) * (k * 0.6), 0.0, 1.0)
    oy, ox = seed % h, (seed // h) % w
    a = _RAIN[(h, w)][oy:oy + h, ox:ox + w, None] * np.float32(0.35 * _ss(0.4, 1.0, rain))
    img += a * (light.ambient * 1.2 + 0.05 - img)


def add_falling_snow(img: np.ndarray, light: Light, rng: np.random.Generator) -> None:
    h, w = img.shape[:2]
    k = int(h * w * 0.012 * _ss(0.5, 1.0, light.snow))
    ys, xs = rng.integers(0, h, k), rng.integers(0, w, k)
    a = (0.5 + 0.5 * rng.random(k, dtype=np.float32))[:, None]
    img[ys, xs] = img[ys, xs] * (1 - a) + a * 0.95


# ----------------------------------------------------------------------------------
# The public entry points: a scene record in, pictures and ground truth out


@dataclass
class Render:
    image: np.ndarray  # uint8 [H, W, 3] RGB
    masks: np.ndarray  # uint8 [H, W] label map, values in LABELS
    depth: np.ndarray  # float32 [H, W] metres along the view axis (sky = 1000)
    attributes: dict[str, float]  # derived scores in [0, 1]
    layout: dict[str, float]  # horizon_y, vanishing_x (fractions), camera_yaw (deg)
    counts: dict[str, int]  # cars, trees, ... within 80 m




def render(params: SceneParams, size: int | str | Sequence[int] = (128, 128)) -> Render:
    h, w = parse_size(size)
    image, labels, depth = render_scene(params, h, w)
    lay = params.layout
    return Render(
        image=image,
        masks=labels,
        depth=depth,
        attributes=params.attributes(),
        layout={"horizon_y": lay.horizon_y, "vanishing_x": lay.vanishing_x,
                "camera_yaw": round(lay.camera_yaw((h, w)), 4)},
        counts=params.counts(),
    )


def scene_record(params: SceneParams, r: Render, size: tuple[int, int]) -> dict:
    """The JSON record written beside each image: parameters plus derived ground truth."""
    return {
        "seed": params.seed,
        "size": list(size),
        "attributes": r.attributes,
        "layout": r.layout,
        "counts": r.counts,
        "params": params.to_dict(),
    }


def render_batch(seeds: Sequence[int], size=(128, 128), condition: str = "mixed") -> tuple[np.ndarray, list[dict]]:
    """Images uint8 [N, H, W, 3] and their records, e.g. to train predictor heads."""
    hw = parse_size(size)
    images = np.empty((len(seeds), hw[0], hw[1], 3), np.uint8)
    records = []
    for i, s in enumerate(seeds):
        p = sample_scene(int(s), condition)
        r = render(p, hw)
        images[i] = r.image
        records.append(scene_record(p, r, hw))
    return images, records


def contact_sheet(images: Sequence[np.ndarray], cols: int = 8, pad: int = 2) -> np.ndarray:
    """A grid of equally sized uint8 [H, W, 3] images on a dark background."""
    if not len(images):
        raise ValueError("no images for a contact sheet")
    h, w = images[0].shape[:2]
    rows = -(-len(images) // cols)
    cols = min(cols, len(images))
    sheet = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 24, np.uint8)
    for i, im in enumerate(images):
        y, x = pad + (i // cols) * (h + pad), pad + (i % cols) * (w + pad)
        sheet[y:y + h, x:x + w] = im
    return sheet


def rerender(params: SceneParams, attribute: str, value: float = 1.0, size: tuple[int, int] = (128, 128)) -> Render:
    """`render(params.with_attribute(attribute, value), size)`: the same street, one attribute changed."""
    return render(params.with_attribute(attribute, value), size)
