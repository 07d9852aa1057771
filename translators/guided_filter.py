"""Carry a low-resolution edit to full resolution with a local affine colour model.

The translator runs at its working resolution (a few hundred pixels). To give the
photo back at its own size *with its own detail*, we do not upsample the network's
output; we fit, at low resolution, a per-pixel affine colour map

    out_c(x) = sum_j A_cj(x) * in_j(x) + b_c(x)          (3x3 matrix + offset per pixel)

between the low-res input and the low-res edited output (the colour guided filter of
He et al., "Guided Image Filtering", TPAMI 2013), smooth it with a box filter, and
apply the bilinearly upsampled coefficients to the full-resolution photo (the "fast
guided filter" of He & Sun 2015). Edges and texture come from the full-res photo;
only the smooth colour/tone change comes from the network.

Cost: fitting is O(working pixels); applying is O(photo pixels): 9 multiply-adds per
pixel, with the 12 coefficient maps upsampled once per 2x2 block of pixels, done in row
strips so memory stays O(strip) on top of the photo.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

# Photo pixels per strip when applying coefficients (64 rows of a 4000-px-wide photo):
# big enough that per-call overhead is small, small enough to stay in cache.
STRIP_PIXELS = 1 << 18


def _box(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window; reflect at borders so edges are not darkened."""
    k = 2 * radius + 1
    return cv2.boxFilter(x, -1, (k, k), normalize=True, borderType=cv2.BORDER_REFLECT)


def fit_local_affine(guide: np.ndarray, target: np.ndarray, radius: int = 2, eps: float = 1e-4) -> np.ndarray:
    """Per-pixel affine colour maps taking `guide` to `target`.

    guide, target: float32 [h, w, 3] in [0, 1] of the same size.
    Returns coefficients [h, w, 3, 4]: A (3x3, output channel first) then b.
    `eps` regularises flat regions (larger = smoother, closer to a per-region offset).
    """
    if guide.shape != target.shape or guide.ndim != 3 or guide.shape[2] != 3:
        raise ValueError(f"guide {guide.shape} and target {target.shape} must both be [h, w, 3]")
    h, w, _ = guide.shape
    radius = int(max(0, min(radius, (min(h, w) - 1) // 2)))
    # Planar maths ([h, w] planes, not [h, w, 3, 3] batches): numpy is fast on big flat
    # arrays and slow on many tiny matrices.
    g = [np.ascontiguousarray(guide[:, :, j], dtype=np.float32) for j in range(3)]
    # Fit the *change* (target - guide) and add the identity back at the end: eps then
    # shrinks only the change towards a local offset, never the photo itself, and "no
    # change" gives exactly the identity map.
    p = [np.asarray(target[:, :, c], dtype=np.float32) - g[c] for c in range(3)]
    pairs = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]
    means = _box_planes(g + p + [g[i] * g[j] for i, j in pairs] + [g[j] * p[c] for j in range(3) for c in range(3)],
                        radius)
    mi, mp = means[0:3], means[3:6]
    sig = {ij: means[6 + k] - mi[ij[0]] * mi[ij[1]] for k, ij in enumerate(pairs)}
    for j in range(3):
        sig[(j, j)] = sig[(j, j)] + eps
    cov = [[means[12 + 3 * j + c] - mi[j] * mp[c] for c in range(3)] for j in range(3)]  # cov[j][c]
    inv = _inverse_sym3(sig)
    planes = []
    for c in range(3):
        # A[c][j] = sum_k inv[j][k] cov[k][c]; b[c] = mean_p[c] - sum_j A[c][j] mean_i[j]
        a_c = [inv[j][0] * cov[0][c] + inv[j][1] * cov[1][c] + inv[j][2] * cov[2][c] for j in range(3)]
        b_c = mp[c] - a_c[0] * mi[0] - a_c[1] * mi[1] - a_c[2] * mi[2]
        a_c[c] = a_c[c] + 1.0
        planes += a_c + [b_c]
    # Averaging the coefficients of all windows covering a pixel (the guided filter's
    # second box pass) keeps them smooth, so bilinear upsampling adds no seams.
    smooth = _box_planes(planes, radius)
    return np.stack(smooth, axis=-1).reshape(h, w, 3, 4)


def _box_planes(planes: list[np.ndarray], radius: int) -> list[np.ndarray]:
    """Box-filter many [h, w] planes, four at a time (OpenCV's fastest channel count)."""
    out = []
    for i in range(0, len(planes), 4):
        chunk = planes[i:i + 4]
        if len(chunk) == 1:
            out.append(_box(chunk[0], radius))
            continue
        res = _box(cv2.merge(chunk), radius)
        out += list(cv2.split(res))
    return out


def _inverse_sym3(m: dict) -> list[list[np.ndarray]]:
    """Inverse of symmetric 3x3 matrices given as planes {(i, j): [h, w]} (i <= j), via the adjugate."""
    a, b, c, d, e, f = m[(0, 0)], m[(0, 1)], m[(0, 2)], m[(1, 1)], m[(1, 2)], m[(2, 2)]
    c00, c01, c02 = d * f - e * e, c * e - b * f, b * e - c * d
    c11, c12, c22 = a * f - c * c, b * c - a * e, a * d - b * b
    inv_det = 1.0 / (a * c00 + b * c01 + c * c02)
    c00, c01, c02, c11, c12, c22 = (x * inv_det for x in (c00, c01, c02, c11, c12, c22))
    return [[c00, c01, c02], [c01, c11, c12], [c02, c12, c22]]


def apply_local_affine(image: np.ndarray, coef: np.ndarray, out: np.ndarray | None = None,
                       strip_pixels: int = STRIP_PIXELS, threads: int = 1) -> np.ndarray:
    """Apply low-res coefficients [h, w, 3, 4] to a full-res image [H, W, 3].

    `image` is uint8, uint16 or float in [0, 1]; the result has the same dtype and
    range (integers rounded and clipped). The coefficients are upsampled bilinearly to
    one value per 2x2 block of photo pixels (a photo of odd size is treated as padded
    by its last row/column): they vary over the ~10-pixel spacing of the working grid,
    so this differs from a per-pixel upsampling by ~64 dB PSNR on a 12-MP photo, at a
    quarter of the upsampling work. Works in row strips: memory is the output plus
    O(strip) floats.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be [H, W, 3], got {image.shape}")
    if coef.ndim != 4 or coef.shape[2:] != (3, 4):
        raise ValueError(f"coefficients must be [h, w, 3, 4], got {coef.shape}")
    H, W, _ = image.shape
    h, w = coef.shape[:2]
    scale = _dtype_max(image.dtype)
    # 12 planes per pixel: A_c0, A_c1, A_c2, b_c for each output channel c. Work in the
    # image's own integer range: scale the offsets instead of every pixel. For 16 bits
    # fold the +0.5 of round-to-nearest into the offset (8 bits: OpenCV rounds).
    planes = coef.reshape(h, w, 12).astype(np.float32, copy=True)
    planes[:, :, 3::4] *= scale
    if image.dtype == np.uint16:
        planes[:, :, 3::4] += 0.5
    # Vertical half of the upsampling once, at the working width (cheap): one row per
    # pair of photo rows, laid out [rows, 12, w] so a strip's planes stack into one image.
    half_h, half_w = -(-H // 2), -(-W // 2)
    vert = np.ascontiguousarray(
        cv2.resize(planes, (w, half_h), interpolation=cv2.INTER_LINEAR).reshape(half_h, w, 12).transpose(0, 2, 1))
    if out is None:
        out = np.empty_like(image)
    strip_rows = max(2, min(256, strip_pixels // max(W, 1)) // 2 * 2)

    def rows(y_start: int, y_stop: int) -> None:
        for y0 in range(y_start, y_stop, strip_rows):
            y1 = min(y_stop, y0 + strip_rows)
            _apply_strip(image[y0:y1], vert[y0 // 2:(y1 + 1) // 2], half_w, scale, out[y0:y1])

    # OpenCV and numpy release the GIL, so threads over row bands use several cores.
    bands = _bands(H, max(1, threads), strip_rows)
    if len(bands) == 1:
        rows(*bands[0])
    else:
        with ThreadPoolExecutor(len(bands)) as pool:
            list(pool.map(lambda b: rows(*b), bands))
    return out


def _bands(height: int, n: int, strip_rows: int) -> list[tuple[int, int]]:
    """Split rows into n bands aligned to (even-height) strips, at least one strip each."""
    n = max(1, min(n, -(-height // strip_rows)))
    per = -(-height // (n * strip_rows)) * strip_rows
    return [(y, min(height, y + per)) for y in range(0, height, per)]


def _apply_strip(strip: np.ndarray, vert: np.ndarray, half_w: int, scale: float, out: np.ndarray) -> None:
    """One strip [s, W, 3] -> out [s, W, 3], with coefficients per 2x2 pixel block.

    Pixel (2i+dy, 2j+dx) uses block (i, j)'s coefficients. Viewing each row of RGB
    pixels as half_w six-channel pixels (R,G,B of the even column, then of the odd one)
    makes the column phases a plain channel split; row phases are strided views. Every
    OpenCV call then works on contiguous-row planes, the block coefficients are
    upsampled once and used by all four phases.
    """
    s, W = strip.shape[:2]
    half_s = vert.shape[0]
    if s % 2 or W % 2:  # odd edge: repeat the last column/row to complete the blocks
        padded = np.empty((2 * half_s, 2 * half_w, 3), strip.dtype)
        padded[:s, :W] = strip
        padded[:s, W:] = strip[:, -1:]
        padded[s:] = padded[s - 1:s]
        strip = padded
    # Horizontal half of the upsampling: all 12 planes of the strip's block rows at once.
    coef = cv2.resize(vert.reshape(half_s * 12, -1), (half_w, half_s * 12),
                      interpolation=cv2.INTER_LINEAR).reshape(half_s, 12, half_w)
    src = [p.astype(np.float32) for p in cv2.split(strip.reshape(2 * half_s, half_w, 6))]
    res = []
    for dx in range(2):
        for c in range(3):
            acc = np.empty((2 * half_s, half_w), np.float32)
            for dy in range(2):
                phase = acc[dy::2]
                phase[...] = coef[:, 4 * c + 3]
                for j in range(3):
                    cv2.accumulateProduct(coef[:, 4 * c + j], src[3 * dx + j][dy::2], phase)
            res.append(acc)
    if strip.dtype == np.uint8:
        # Clip below, then OpenCV's saturating round-to-uint8 per plane; merging uint8
        # planes moves 4x fewer bytes than merging float ones.
        # (np.maximum, not cv2.max: OpenCV reads a scalar as a 4-vector for 1x1 inputs.)
        planes = [cv2.convertScaleAbs(np.maximum(r, 0.0, out=r)) for r in res]
        if strip.shape[:2] == (s, W) and out.flags.c_contiguous:  # not padded: merge in place
            cv2.merge(planes, out.reshape(s, half_w, 6))
            return
        merged = cv2.merge(planes)
    else:
        merged = np.clip(cv2.merge(res), 0.0, scale).astype(strip.dtype)
    out[...] = merged.reshape(2 * half_s, 2 * half_w, 3)[:s, :W]


def _dtype_max(dtype: np.dtype) -> float:
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    if np.issubdtype(dtype, np.floating):
        return 1.0
    raise ValueError(f"unsupported image dtype {dtype}; expected uint8, uint16 or float")
