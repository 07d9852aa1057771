"""HSR (gan/hsr.py): pairing by resolution, gradients reach exactly the aligned generator levels,
training lowers the alignment loss, checkpoints carry the heads, a baseline resumes with HSR on."""
import torch
from torch import nn

from gan.hsr import HierarchicalSemanticRegulariser, pair_levels
from gan.networks import Generator, GeneratorConfig
from gan.training import HSR_HEADS_FILENAME, InMemoryBatches, TrainConfig, Trainer, train

GCFG = dict(z_dim=16, w_dim=16, resolution=(16, 16), mapping_layers=2, channel_base=64, channel_max=8)
TCFG = dict(batch=4, minutes=0.0, d_channel_base=64, d_channel_max=8, swd_images=0, grid_images=4,
            r1_interval=2, tick_kimg=1.0, style_mixing=0.0, augment=())


class TinyEncoder(nn.Module):
    """Two stride-2 stages: 16 px -> 8 px (6 ch) -> 4 px (10 ch); random but fixed."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(123)
        self.a = nn.Conv2d(3, 6, 3, 2, 1)
        self.b = nn.Conv2d(6, 10, 3, 2, 1)

    def forward(self, x):
        f1 = torch.relu(self.a(x))
        return [f1, torch.relu(self.b(f1))]


def test_pairs_follow_the_resolution_hierarchy():
    gen = [(4, 4), (8, 8), (16, 16), (32, 32), (64, 64)]
    enc = [(32, 32), (16, 16), (8, 8), (4, 4)]  # shallow -> deep
    assert pair_levels(gen, enc) == [(0, 3), (1, 2), (2, 1), (3, 0)]  # coarse <-> deep
    assert pair_levels(gen, enc, levels=(1, 2)) == [(1, 2), (2, 1)]
    # a 2:1 generator pairs by its short side; a stage coarser than every free level is left out
    assert pair_levels([(4, 8), (8, 16)], [(8, 16), (4, 8), (2, 4)]) == [(0, 1), (1, 0)]


def test_hsr_gradient_reaches_the_aligned_levels_only():
    torch.manual_seed(0)
    G = Generator(GeneratorConfig(**GCFG))
    hsr = HierarchicalSemanticRegulariser(TinyEncoder(), G.synthesis.level_shapes(), (16, 16))
    assert hsr.pairs == [(0, 1), (1, 0)]  # 4 px <-> 4 px stage, 8 px <-> 8 px stage; 16 px level free
    ws = G.broadcast(G.mapping(torch.randn(4, 16)))
    img, feats = G.synthesis(ws, return_features=True)
    hsr(feats, img).backward()
    lv = G.synthesis.levels

    def moved(p):
        return p.grad is not None and p.grad.abs().sum() > 0

    for p in (G.synthesis.const, lv[0].conv1.conv.weight, lv[1].conv0.conv.weight, lv[1].conv1.conv.weight,
              lv[1].conv1.conv.affine.weight, G.mapping.layers[0].weight):
        assert moved(p)
    # Level 2 and every toRGB come after the aligned features: no gradient from HSR.
    for p in (lv[2].conv0.conv.weight, lv[2].conv1.conv.weight, lv[0].torgb.conv.weight, lv[2].torgb.conv.weight):
        assert not moved(p)
    assert all(moved(p) for p in hsr.heads.parameters())
    # The encoder is a fixed target: it gets no gradient and is not part of the heads' state.
    assert all(p.grad is None for p in hsr.encoder.parameters())
    assert not any(k.startswith("encoder") for k in hsr.state_dict())


def test_training_with_hsr_lowers_the_alignment_loss_and_is_off_by_default():
    gcfg = GeneratorConfig(**GCFG)
    g = torch.Generator().manual_seed(0)
    real = torch.rand(4, 3, 16, 16, generator=g) * 2 - 1
    assert Trainer(gcfg, TrainConfig(**TCFG)).hsr is None
    trainer = Trainer(gcfg, TrainConfig(hsr_weight=1.0, **TCFG), hsr_encoder=TinyEncoder())
    losses = [trainer.train_step(real)["hsr"] for _ in range(40)]
    assert sum(losses[-8:]) / 8 < 0.8 * sum(losses[:8]) / 8


def test_checkpoint_keeps_heads_and_a_baseline_resumes_with_hsr(tmp_path):
    gcfg = GeneratorConfig(**GCFG)
    imgs = (torch.rand(16, 16, 16, 3, generator=torch.Generator().manual_seed(1)) * 255).to(torch.uint8)
    base = train(gcfg, TrainConfig(kimg=0.008, **TCFG), InMemoryBatches(imgs, 4), tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "checkpoints" / "latest" / HSR_HEADS_FILENAME).exists()
    # The paper's recipe: HSR fine-tunes a trained baseline (heads start fresh).
    hcfg = TrainConfig(kimg=0.016, hsr_weight=1.0, **TCFG)
    tuned = train(gcfg, hcfg, InMemoryBatches(imgs, 4), tmp_path / "run", resume=True, progress=False,
                  hsr_encoder=TinyEncoder())
    assert tuned.state.step == 4 and base.state.step == 2
    latest = tmp_path / "run" / "checkpoints" / "latest"
    assert (latest / HSR_HEADS_FILENAME).exists()
    again = Trainer(gcfg, hcfg, hsr_encoder=TinyEncoder())
    again.load(latest)
    for a, b in zip(again.hsr.parameters(), tuned.hsr.parameters()):
        assert torch.equal(a, b)
    assert again.opt_h.state_dict()["state"]  # the heads' Adam moments came back too


def test_hsr_weight_without_encoder_is_a_clear_error():
    import pytest

    with pytest.raises(ValueError, match="hsr_encoder"):
        Trainer(GeneratorConfig(**GCFG), TrainConfig(hsr_weight=1.0, **TCFG))


def test_local_encoders_give_shallow_to_deep_stages_and_refuse_bad_files(tmp_path):
    import json

    import pytest
    import torchvision
    from safetensors.torch import save_file

    from pipeline.errors import UserError
    from pipeline.semantics.encoders import load_encoder
    from pipeline.semantics.predictors.classifier import AttributeNet

    folder = tmp_path / "predictor"
    folder.mkdir()
    save_file(AttributeNet(2, width=4).state_dict(), str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({
        "architecture": {"num_outputs": 2, "width": 4}, "outputs": ["sunny", "night"], "kinds": ["prob", "prob"],
        "input_size": [16, 16], "target_mean": [0, 0], "target_std": [1, 1]}))
    feats = load_encoder(folder)(torch.zeros(2, 3, 32, 32))  # resized to the predictor's 16 px
    assert [tuple(f.shape[1:]) for f in feats] == [(4, 8, 8), (8, 4, 4), (16, 2, 2), (16, 1, 1)]

    torch.manual_seed(0)
    save_file(torchvision.models.resnet18(weights=None).state_dict(), str(tmp_path / "r18.safetensors"))
    feats = load_encoder(tmp_path / "r18.safetensors", "resnet18")(torch.zeros(1, 3, 64, 64))
    assert [f.shape[-1] for f in feats] == [32, 16, 8, 4, 2] and feats[-1].shape[1] == 512

    with pytest.raises(UserError, match="not a torchvision vgg11 state dict"):
        load_encoder(tmp_path / "r18.safetensors", "vgg11")
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(UserError, match="junk.pth"):
        load_encoder(tmp_path / "junk.pth", "resnet18")
