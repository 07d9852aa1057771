"""Semantic image editing on a tiny generator: the painted region takes the class, the rest stays."""
from __future__ import annotations

import pytest
import torch

from gan.networks import Generator, GeneratorConfig
from pipeline.semantics import lse as L
from pipeline.semantics.sie import KEEP, as_w_plus, check_target, psnr, semantic_edit, w_plus_for_seed
from tests.test_lse import linear_label


@pytest.fixture(scope="module")
def tiny_lse():
    torch.manual_seed(0)
    G = Generator(GeneratorConfig(z_dim=16, w_dim=16, resolution=(16, 16), mapping_layers=2,
                                  channels=(16, 16, 8))).eval().requires_grad_(False)
    _, feats = L.sample_with_features(G, range(16))
    return G, L.fit_extractor(feats, linear_label(feats), 3, steps=150)


def true_labels(G, ws):
    _, fs = G.synthesis(ws, noise_mode="const", return_features=True)
    return linear_label(fs)[0]


def test_sie_paints_the_region_and_keeps_the_rest_better_than_unconstrained(tiny_lse):
    G, ext = tiny_lse
    ws = w_plus_for_seed(G, 1)
    before = true_labels(G, ws)
    c = int(torch.bincount(before[:8, :8].flatten(), minlength=3).argmin())  # the class rarest in the corner
    paint = torch.full((16, 16), KEEP)
    paint[:8, :8] = c
    outside = paint == KEEP

    res = semantic_edit(G, ext, ws, paint, steps=40, lr=0.1)
    free = semantic_edit(G, ext, ws, paint, steps=40, lr=0.1, keep_weight=0, pixel_weight=0, reg_weight=0)
    frac_before = float((before[:8, :8] == c).float().mean())
    frac_after = float((true_labels(G, res.w_plus)[:8, :8] == c).float().mean())
    assert frac_after > frac_before + 0.3, (frac_before, frac_after)
    kept, unconstrained = psnr(res.before_image, res.image, outside), psnr(free.before_image, free.image, outside)
    assert kept > unconstrained + 5, (kept, unconstrained)
    assert res.w_plus.shape == (1, G.num_ws, 16) and res.image.shape == (1, 3, 16, 16)
    assert len(res.history) == 40 and res.history[-1]["ce_region"] < res.history[0]["ce_region"]
    assert torch.equal(res.before_image, free.before_image)


def test_sie_refuses_bad_layouts_and_latents(tiny_lse):
    G, ext = tiny_lse
    with pytest.raises(ValueError, match="image size"):
        check_target(ext, torch.zeros(8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="class id 0..2"):
        check_target(ext, torch.full((16, 16), 7))
    with pytest.raises(ValueError, match="nothing painted"):
        check_target(ext, torch.full((16, 16), KEEP))
    with pytest.raises(ValueError, match="integers"):
        check_target(ext, torch.zeros(16, 16))
    with pytest.raises(ValueError, match="W\\+"):
        as_w_plus(G, torch.zeros(5))
    w = G.mapping(L.seed_latents(G, [3]))
    assert torch.equal(as_w_plus(G, w[0]), G.broadcast(w))


def test_feature_blending_keeps_the_outside_while_the_region_changes(tiny_lse):
    G, ext = tiny_lse
    ws = w_plus_for_seed(G, 1)
    before = true_labels(G, ws)
    c = int(torch.bincount(before[:8, :8].flatten(), minlength=3).argmin())
    paint = torch.full((16, 16), KEEP)
    paint[:8, :8] = c
    outside = paint == KEEP
    plain = semantic_edit(G, ext, ws, paint, steps=40, lr=0.1)
    blended = semantic_edit(G, ext, ws, paint, steps=40, lr=0.1, blend="features", keep_weight=0, pixel_weight=0)
    assert psnr(plain.before_image, plain.image, outside) < 40  # the plain edit moves the outside too
    assert torch.allclose(blended.image[..., outside], blended.before_image[..., outside], atol=1e-5)
    inside = blended.labels[:8, :8] == c  # the extractor's view of the blended result
    assert inside.float().mean() > float((before[:8, :8] == c).float().mean()) + 0.3
    assert not (blended.image - blended.before_image)[..., :8, :8].abs().lt(1e-6).all()
    with pytest.raises(ValueError, match="blend"):
        semantic_edit(G, ext, ws, paint, steps=1, blend="pixels")
    shared = semantic_edit(G, ext, ws, paint, steps=3, lr=0.1, space="w")
    offset = shared.w_plus - ws  # one offset, the same on every layer
    assert offset.abs().max() > 0 and torch.allclose(offset, offset[:, :1].expand_as(offset), atol=1e-6)
    with pytest.raises(ValueError, match="space"):
        semantic_edit(G, ext, ws, paint, steps=1, space="z")


def test_edit_scores_count_the_region_not_the_class_elsewhere():
    from pipeline.semantics.sie import edit_scores

    before = torch.zeros(1, 3, 4, 4)
    after = before.clone()
    after[..., 0, :] = 0.5  # only the painted row changes
    labels = {id(before): torch.tensor([[0, 0, 0, 0], [1, 1, 1, 1], [2, 2, 2, 2], [2, 2, 2, 2]]),
              id(after): torch.tensor([[2, 2, 0, 0], [1, 1, 1, 2], [2, 2, 2, 2], [2, 2, 2, 2]])}
    paint = torch.full((4, 4), KEEP)
    paint[0] = 2  # repaint the top row as class 2, which already fills the bottom half
    sc = edit_scores(lambda img: labels[id(img)][None], before, after, paint)
    assert sc["region_fraction_before"] == 0 and sc["region_fraction"] == 0.5
    assert sc["region_iou"] == {2: 2 / 5}  # 2 of the row; union: the row + one pixel newly 2 outside
    assert sc["psnr_outside"] == 100.0 and sc["region_pixels"] == 4
