"""The camera between the scene's light and the picture's pixels.

The renderer computes how much light reaches each pixel (display-referred: 1.0 is a white
wall in full sun); `develop` turns that into the uint8 picture the way a street camera
does, in the order light meets it:

  1. Optics: vignette (corners darker) and white balance / exposure gains, one multiply;
     with `metering`, the exposure follows the scene: one whose mean light is below a bright
     day's (METER_TARGET) is lifted toward it by at most METER_MAX_GAIN, what a street
     camera's longer shutter and gain buy at dusk and night. Both are set so that the
     world's day, golden hour and night match real street photos' Lab statistics
     (bench/bench_world_lab.py): a real night photo's grey mean is 0.44 of a day photo's,
     the world's was 0.23 before it metered.
  2. Lens: a slight Gaussian blur (also what keeps polygon edges from stair-stepping).
  3. Sensor: noise that grows in the dark (the gain a camera needs at night).
  4. Tone: a filmic curve - contrast around mid-grey and a soft shoulder for highlights,
     so lamps and a low sun roll off instead of clipping flat.
  5. Storage: JPEG at the record's quality (0 = none).

The settings are a `CameraResponse` record in the scene (`SceneParams.camera`), drawn from
the seed's own stream, so re-rendering a scene with other lighting keeps the same camera.
The noise pattern comes from the scene's texture seed: a re-render has the same grain.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from pipeline.world.scene import CameraResponse

METER_TARGET = 0.38  # mean scene light (luminance) the metering lifts a darker scene toward
METER_MAX_GAIN = 2.4
_LUT_MAX = 4.0  # scene light above this is white whatever the curve
_LUT_SIZE = 2048
_PIVOT = 0.35  # mid-grey the contrast turns around
_KNEE = 0.72  # where the highlight shoulder starts (display value)


def tone_curve(x: np.ndarray, contrast: float) -> np.ndarray:
    """Filmic curve on display-referred light x >= 0 -> [0, 1]: a power law around the
    pivot (contrast > 1 steepens mid-tones), then an exponential shoulder above the knee."""
    x = np.maximum(np.asarray(x, np.float64), 0.0)
    y = _PIVOT * (x / _PIVOT) ** contrast
    over = y > _KNEE
    y[over] = _KNEE + (1.0 - _KNEE) * (1.0 - np.exp(-(y[over] - _KNEE) / (1.0 - _KNEE)))
    return y


_LUTS: dict[float, np.ndarray] = {}


def _lut(contrast: float) -> np.ndarray:
    key = round(contrast, 3)
    if key not in _LUTS:
        x = np.linspace(0.0, _LUT_MAX, _LUT_SIZE)
        _LUTS[key] = (tone_curve(x, key) * 255.0).astype(np.float32)
    return _LUTS[key]


_RADIUS: dict[tuple[int, int], np.ndarray] = {}


def _radius2(h: int, w: int) -> np.ndarray:
    """Squared distance from the centre, 1 at the corners, [H, W, 1]."""
    if (h, w) not in _RADIUS:
        y = (np.arange(h, dtype=np.float32) - (h - 1) / 2) / (h / 2)
        x = (np.arange(w, dtype=np.float32) - (w - 1) / 2) / (w / 2)
        _RADIUS[(h, w)] = ((y[:, None] ** 2 + x[None, :] ** 2) * 0.5)[..., None].astype(np.float32)
    return _RADIUS[(h, w)]


_NOISE: dict[tuple[int, int], np.ndarray] = {}


def _noise_tile(h: int, w: int, seed: int) -> np.ndarray:
    """Unit-variance noise [H, W, 3] (slightly correlated, as after demosaicing), read
    from a fixed tile per size at a seed-dependent offset: cheap and deterministic."""
    if (h, w) not in _NOISE:
        tile = np.random.default_rng(54321).standard_normal((2 * h, 2 * w, 3)).astype(np.float32)
        tile = cv2.GaussianBlur(tile, (3, 3), 0.5)
        _NOISE[(h, w)] = tile / tile.std()
    oy, ox = seed % h, (seed // h) % w
    return _NOISE[(h, w)][oy:oy + h, ox:ox + w]


def white_balance_gains(cam: CameraResponse) -> np.ndarray:
    """RGB gains of the white balance: warm raises red and lowers blue, tint moves green."""
    t, g = cam.white_balance, cam.tint
    gains = np.array([1.0 + 0.12 * t, 1.0 + 0.06 * g, 1.0 - 0.14 * t], np.float32)
    return gains * np.float32(2.0 ** cam.exposure)


def metered_gain(light: np.ndarray) -> float:
    """Exposure gain of the camera's metering for scene light [H, W, 3], in [1, METER_MAX_GAIN]:
    from the mean luminance with light above 1 counted as 1 (lamps saturate the meter too)."""
    y = light[::4, ::4] @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    return float(np.clip(METER_TARGET / max(float(np.minimum(y, 1.0).mean()), 1e-4), 1.0, METER_MAX_GAIN))


def develop(light: np.ndarray, cam: CameraResponse, darkness: float, seed: int) -> np.ndarray:
    """Scene light float32 [H, W, 3] (modified in place) -> uint8 picture [H, W, 3].

    darkness: 0 in daylight .. 1 at full night; the sensor's noise grows with it.
    """
    h, w = light.shape[:2]
    scale = h / 128.0  # record settings are in pixels of a 128-px-high picture
    # 1. Optics: vignette and gains (white balance, exposure, metering) in one multiply.
    gains = white_balance_gains(cam) * np.float32(metered_gain(light) if cam.metering else 1.0)
    light *= (1.0 - cam.vignette * _radius2(h, w)) * gains
    # 2. Lens blur.
    sigma = cam.blur * scale
    if sigma > 0.05:
        cv2.GaussianBlur(light, (0, 0), sigma, dst=light)
    # 3. Sensor noise: read noise plus more in the dark (higher gain), on linear light.
    # (a smaller picture averages more sensor pixels into each of its own: less noise)
    std = cam.noise * (1.0 + 2.5 * darkness) * min(math.sqrt(scale), 2.0)
    if std > 0:
        light += _noise_tile(h, w, seed) * np.float32(std)
    # 4. Tone curve through a lookup table on the light's index.
    np.multiply(light, (_LUT_SIZE - 1) / _LUT_MAX, out=light)
    np.clip(light, 0, _LUT_SIZE - 1, out=light)
    idx = light.astype(np.int16)
    out = cv2.convertScaleAbs(np.take(_lut(cam.contrast), idx))
    # 5. JPEG.
    if cam.jpeg_quality > 0:
        # OpenCV's codec takes BGR: flip so its chroma subsampling works on the right axes.
        ok, buf = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(cam.jpeg_quality)])
        if ok:
            out = np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])
    return out
