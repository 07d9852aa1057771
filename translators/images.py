"""Photo pixels between PIL images and numpy arrays, without torch (photo I/O must not load it).

Arrays are RGB [H, W, 3] uint8 or uint16 (or float in [0, 1]) with alpha [H, W] apart.
The network side of the conversion (arrays <-> tensors) is `translators.inference`.
"""
from __future__ import annotations

import numpy as np



def pil_to_array(img) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """PIL image -> (rgb [H,W,3] uint8|uint16, alpha [H,W] same dtype or None, notes)."""
    notes: list[str] = []
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(img)
        if mode == "I":  # 32-bit int, as PIL gives for some 16-bit files
            arr = np.clip(arr, 0, 65535)
        arr = arr.astype(np.uint16)
        return np.repeat(arr[:, :, None], 3, axis=2), None, notes
    if mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        notes.append("32-bit float greyscale converted to 16-bit")
        arr = (np.clip(arr / max(float(arr.max()), 1e-12), 0, 1) * 65535 + 0.5).astype(np.uint16)
        return np.repeat(arr[:, :, None], 3, axis=2), None, notes
    if mode == "P":
        mode_to = "RGBA" if "transparency" in img.info else "RGB"
        img, mode = img.convert(mode_to), mode_to
    elif mode == "PA":
        img, mode = img.convert("RGBA"), "RGBA"
    if mode == "CMYK":
        notes.append("CMYK converted to RGB (output is RGB)")
        img, mode = img.convert("RGB"), "RGB"
    if mode in ("RGBA", "LA", "RGBa", "La"):
        img = img.convert("RGBA") if mode != "RGBA" else img
        arr = np.asarray(img)
        return np.ascontiguousarray(arr[:, :, :3]), np.ascontiguousarray(arr[:, :, 3]), notes
    if mode != "RGB":
        if mode not in ("L", "1"):
            notes.append(f"mode {mode} converted to RGB")
        img = img.convert("RGB")
    return np.asarray(img), None, notes


def array_to_pil(rgb: np.ndarray, alpha: np.ndarray | None = None):
    """(rgb, alpha) -> PIL image (8-bit: PIL has no 16-bit RGB mode; imageio writes 16-bit PNG itself)."""
    from PIL import Image

    rgb8 = to_uint8(rgb)
    if alpha is None:
        return Image.fromarray(rgb8, "RGB")
    return Image.fromarray(np.dstack([rgb8, to_uint8(alpha)]), "RGBA")


def to_uint8(a: np.ndarray) -> np.ndarray:
    """uint8 as is; uint16 and float [0, 1] arrays rounded to uint8."""
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.uint16:
        return ((a.astype(np.uint32) + 128) // 257).astype(np.uint8)
    return (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)
