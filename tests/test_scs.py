"""Semantic-conditional sampling on a tiny generator: the optimised sample follows the target layout."""
from __future__ import annotations

import pytest
import torch

from gan.networks import Generator, GeneratorConfig
from pipeline.semantics import lse as L
from pipeline.semantics.scs import conditional_sample, semantic_sample
from pipeline.semantics.segmenter import mean_iou
from tests.test_lse import linear_label


def test_scs_follows_the_layout_better_than_unconditioned_samples():
    torch.manual_seed(0)
    G = Generator(GeneratorConfig(z_dim=16, w_dim=16, resolution=(16, 16), mapping_layers=2,
                                  channels=(16, 16, 8))).eval().requires_grad_(False)
    _, feats = L.sample_with_features(G, range(16))
    ext = L.fit_extractor(feats, linear_label(feats), 3, steps=150)
    _, target_feats = L.sample_with_features(G, [900])
    target = linear_label(target_feats)[0]  # the layout of a sample neither side has seen

    def layout_miou(w):
        _, fs = G.synthesis(G.broadcast(w), noise_mode="const", return_features=True)
        return mean_iou(linear_label(fs)[0].numpy(), target.numpy(), 3)

    gains = []
    for seed in (1, 2, 3):
        image, w = conditional_sample(G, ext, target, seed=seed, steps=60, lr=0.1)
        start = G.mapping(L.seed_latents(G, [seed]))
        gains.append(layout_miou(w) - layout_miou(start))
        assert image.shape == (1, 3, 16, 16)
    assert min(gains) > 0 and sum(gains) / len(gains) > 0.3, gains
    with pytest.raises(ValueError, match="layout"):
        conditional_sample(G, ext, target[:8], steps=1)


def test_semantic_sample_picks_the_best_start_and_improves_on_it():
    torch.manual_seed(0)
    G = Generator(GeneratorConfig(z_dim=16, w_dim=16, resolution=(16, 16), mapping_layers=2,
                                  channels=(16, 16, 8))).eval().requires_grad_(False)
    _, feats = L.sample_with_features(G, range(16))
    ext = L.fit_extractor(feats, linear_label(feats), 3, steps=150)
    _, target_feats = L.sample_with_features(G, [901])
    target = linear_label(target_feats)[0]

    def layout_miou(image_ws):
        _, fs = G.synthesis(image_ws, noise_mode="const", return_features=True)
        return mean_iou(linear_label(fs)[0].numpy(), target.numpy(), 3)

    picked = semantic_sample(G, ext, target, seed=100, pool=8, starts=0)
    assert len(picked.starts) == 1 and picked.loss == pytest.approx(picked.starts[0]["loss_before"], rel=1e-5)
    assert torch.equal(picked.image, picked.start_image)
    res = semantic_sample(G, ext, target, seed=100, pool=8, starts=2, steps=40, lr=0.1)
    assert len(res.starts) == 2 and res.loss == min(r["loss"] for r in res.starts)
    assert res.loss < min(r["loss_before"] for r in res.starts)
    start_ws = G.broadcast(G.mapping(L.seed_latents(G, [res.seed])))
    assert layout_miou(res.w_plus) > layout_miou(start_ws) + 0.2
    for space in ("wplus", "z"):
        other = semantic_sample(G, ext, target, seed=100, pool=8, starts=1, steps=10, lr=0.1, space=space)
        assert other.w_plus.shape == (1, G.num_ws, 16) and other.loss < other.starts[0]["loss_before"]
    shaken = [semantic_sample(G, ext, target, seed=100, pool=8, starts=1, steps=10, lr=0.1, jitter=0.3) for _ in "ab"]
    assert torch.equal(shaken[0].w_plus, shaken[1].w_plus)  # jitter draws are seeded: same arguments, same result
    assert not torch.equal(shaken[0].w_plus, semantic_sample(G, ext, target, seed=100, pool=8, starts=1, steps=10,
                                                             lr=0.1).w_plus)
    with pytest.raises(ValueError, match="space"):
        semantic_sample(G, ext, target, space="s")
    with pytest.raises(ValueError, match="class id 0..2"):
        semantic_sample(G, ext, torch.full((16, 16), 5))
