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

Cost: fitting is O(working pixels); applying is O(photo pixels) with 12 coefficient
maps per pixel, done in row strips so memory stays O(strip) on top of the photo.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

# Rows per strip when applying coefficients: small enough that the 12 coefficient
# maps of a strip stay in cache for a 6000-px-wide photo (~1.2 MB per row).
STRIP_ROWS = 16


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


def _row_weights(out_rows: np.ndarray, out_h: int, in_h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear (half-pixel centre) source rows and weights, like cv2.resize/align_corners=False."""
    src = (out_rows + 0.5) * (in_h / out_h) - 0.5
    src = np.clip(src, 0, in_h - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, in_h - 1)
    return lo, hi, (src - lo).astype(np.float32)


def apply_local_affine(image: np.ndarray, coef: np.ndarray, out: np.ndarray | None = None,
                       strip_rows: int = STRIP_ROWS, threads: int = 1) -> np.ndarray:
    """Apply low-res coefficients [h, w, 3, 4] to a full-res image [H, W, 3].

    `image` is uint8, uint16 or float in [0, 1]; the result has the same dtype and
    range (integers rounded and clipped). Works strip by strip: memory is the output
    plus O(strip_rows * W * 12) floats.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be [H, W, 3], got {image.shape}")
    if coef.ndim != 4 or coef.shape[2:] != (3, 4):
        raise ValueError(f"coefficients must be [h, w, 3, 4], got {coef.shape}")
    H, W, _ = image.shape
    h, w = coef.shape[:2]
    scale = _dtype_max(image.dtype)
    # Planar layout [12, h, w] (A_c0, A_c1, A_c2, b_c for each output channel c): the
    # per-pixel maths then runs on contiguous planes, ~4x faster than interleaved.
    planes = np.ascontiguousarray(np.transpose(coef.reshape(h, w, 12), (2, 0, 1)), dtype=np.float32)
    # Work in the image's own integer range: scale offsets instead of every pixel. For
    # 16 bits fold the +0.5 of round-to-nearest into the offset (8 bits: OpenCV rounds).
    planes[3::4] *= scale
    if image.dtype == np.uint16:
        planes[3::4] += 0.5
    if out is None:
        out = np.empty_like(image)

    def rows(y_start: int, y_stop: int) -> None:
        for y0 in range(y_start, y_stop, strip_rows):
            y1 = min(y_stop, y0 + strip_rows)
            out[y0:y1] = _apply_strip(image[y0:y1], planes, y0, H, scale)

    # OpenCV and numpy release the GIL, so threads over row bands use several cores.
    bands = _bands(H, max(1, threads), strip_rows)
    if len(bands) == 1:
        rows(*bands[0])
    else:
        with ThreadPoolExecutor(len(bands)) as pool:
            list(pool.map(lambda b: rows(*b), bands))
    return out


def _bands(height: int, n: int, strip_rows: int) -> list[tuple[int, int]]:
    """Split rows into n bands aligned to strips (at least one strip each)."""
    n = max(1, min(n, -(-height // strip_rows)))
    per = -(-height // (n * strip_rows)) * strip_rows
    return [(y, min(height, y + per)) for y in range(0, height, per)]


def _apply_strip(strip: np.ndarray, planes: np.ndarray, y0: int, H: int, scale: float) -> np.ndarray:
    s, W = strip.shape[:2]
    h = planes.shape[1]
    lo, hi, f = _row_weights(np.arange(y0, y0 + s, dtype=np.float64), H, h)
    # Vertical interpolation at low width (cheap) ...
    rows = planes[:, lo] * (1 - f)[None, :, None] + planes[:, hi] * f[None, :, None]
    # ... then one horizontal-only resize of all 12 planes stacked as one image.
    full = cv2.resize(rows.reshape(12 * s, -1), (W, 12 * s), interpolation=cv2.INTER_LINEAR).reshape(12, s, W)
    src = [p.astype(np.float32) for p in cv2.split(np.ascontiguousarray(strip))]
    res = []
    for c in range(3):
        acc = full[4 * c + 3]
        for j in range(3):
            cv2.accumulateProduct(full[4 * c + j], src[j], acc)
        res.append(acc)
    if strip.dtype == np.uint8:
        # Clip below, then OpenCV's saturating round-to-uint8 per plane; merging uint8
        # planes moves 4x fewer bytes than merging float ones.
        # (np.maximum, not cv2.max: OpenCV reads a scalar as a 4-vector for 1x1 inputs.)
        return cv2.merge([cv2.convertScaleAbs(np.maximum(r, 0.0, out=r)) for r in res])
    merged = cv2.merge(res)
    np.clip(merged, 0.0, scale, out=merged)
    return merged.astype(strip.dtype)


def _dtype_max(dtype: np.dtype) -> float:
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    if np.issubdtype(dtype, np.floating):
        return 1.0
    raise ValueError(f"unsupported image dtype {dtype}; expected uint8, uint16 or float")
