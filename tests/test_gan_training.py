"""Training loop: exact resume, NaN guard, a measured learning effect, 2-process gloo data parallel."""
import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from gan.checkpoint import load_generator, read_generator_metadata
from gan.networks import GeneratorConfig
from gan.training import InMemoryBatches, TrainConfig, TrainingDiverged, diff_augment, generate, train

GCFG = dict(z_dim=16, w_dim=16, resolution=(16, 16), mapping_layers=2, channel_base=64, channel_max=8)
TCFG = dict(batch=4, minutes=0.0, d_channel_base=64, d_channel_max=8, swd_images=0, grid_images=4,
            r1_interval=2, pl_weight=2.0, pl_interval=2, tick_kimg=1.0)



def data_set(n=32, seed=0):
    """uint8 [N, H, W, 3], as renders and photos come."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 16, 16, 3, generator=g) * 255).to(torch.uint8)


def flat_params(module):
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def test_diff_augment_shapes_and_effect():
    torch.manual_seed(0)
    x = torch.rand(6, 3, 16, 32) * 2 - 1
    for ops in [("translation",), ("cutout",), ("color",), ("translation", "cutout", "color")]:
        y = diff_augment(x, ops)
        assert y.shape == x.shape and not torch.equal(x, y)
    cut = diff_augment(x, ("cutout",))
    zero_frac = (cut == 0).float().mean()
    assert 0.05 < zero_frac < 0.4  # a quarter of the area on average, partly over the border


def test_resume_gives_same_next_steps_as_uninterrupted(tmp_path):
    gcfg = GeneratorConfig(**GCFG)
    imgs = data_set()
    full = train(gcfg, TrainConfig(kimg=0.016, **TCFG), InMemoryBatches(imgs, 4), tmp_path / "a", progress=False)
    train(gcfg, TrainConfig(kimg=0.008, **TCFG), InMemoryBatches(imgs, 4), tmp_path / "b", progress=False)
    resumed = train(gcfg, TrainConfig(kimg=0.016, **TCFG), InMemoryBatches(imgs, 4), tmp_path / "b",
                    resume=True, progress=False)
    assert resumed.state.step == full.state.step == 4
    for m_full, m_res in [(full.G, resumed.G), (full.D, resumed.D), (full.G_ema, resumed.G_ema)]:
        assert torch.equal(flat_params(m_full), flat_params(m_res))
    # The checkpoint in the folder rebuilds the EMA generator on its own.
    G = load_generator(tmp_path / "b")
    assert torch.equal(flat_params(G), flat_params(full.G_ema))
    # and a run with one step fewer is different (the comparison above can fail)
    short = train(gcfg, TrainConfig(kimg=0.012, **TCFG), InMemoryBatches(imgs, 4), tmp_path / "c", progress=False)
    assert not torch.equal(flat_params(short.G), flat_params(full.G))


def test_resume_from_a_copy_without_links(tmp_path):
    """A run folder copied with its links followed (tar -h, cp -L, zip: `latest` a real folder, the
    step folders maybe gone) resumes exactly and keeps its checkpoints rotating."""
    import shutil

    gcfg = GeneratorConfig(**GCFG)
    imgs = data_set()
    cfg = dict(TCFG, tick_kimg=0.004, snapshot_ticks=1)
    full = train(gcfg, TrainConfig(kimg=0.016, **cfg), InMemoryBatches(imgs, 4), tmp_path / "a", progress=False)
    for keep_steps in (False, True):
        run = tmp_path / f"b{keep_steps}"
        train(gcfg, TrainConfig(kimg=0.008, **cfg), InMemoryBatches(imgs, 4), run, progress=False)
        ck = run / "checkpoints"
        target = (ck / "latest").resolve()
        (ck / "latest").unlink()
        shutil.copytree(target, ck / "latest")
        if not keep_steps:
            for folder in ck.glob("step-*"):
                shutil.rmtree(folder)
        resumed = train(gcfg, TrainConfig(kimg=0.016, **cfg), InMemoryBatches(imgs, 4), run, resume=True,
                        progress=False)
        assert torch.equal(flat_params(resumed.G), flat_params(full.G)), keep_steps
        assert (ck / "latest").is_symlink() and (ck / "latest").resolve().name == "step-00000004"
        assert sorted(f.name for f in ck.glob("step-*")) == ["step-00000002", "step-00000003", "step-00000004"]


def test_nan_guard_stops_and_keeps_last_good_checkpoint(tmp_path):
    gcfg = GeneratorConfig(**GCFG)
    good = InMemoryBatches(data_set(), 4)

    def poisoned(start):
        for i, x in enumerate(good(start), start=start):
            yield torch.full_like(x, float("nan")) if i == 3 else x

    cfg = TrainConfig(kimg=1.0, **{**TCFG, "tick_kimg": 0.004, "snapshot_ticks": 1})
    with pytest.raises(TrainingDiverged, match="non-finite loss at step 4.*step-00000003"):
        train(gcfg, cfg, poisoned, tmp_path, progress=False)
    G = load_generator(tmp_path)
    assert all(torch.isfinite(p).all() for p in G.parameters())
    assert json.loads((tmp_path / "checkpoints" / "latest" / "state.json").read_text())["step"] == 3


def test_training_leaves_cudnn_benchmark_as_it_found_it(tmp_path, monkeypatch):
    """A Trainer on CUDA turns cuDNN's algorithm search on for its steps; train() puts the process-wide
    flag back, also when training stops with an error (simulated here: this machine has no CUDA)."""
    import gan.training as training

    init = training.Trainer.__init__

    def cuda_like_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        torch.backends.cudnn.benchmark = True

    monkeypatch.setattr(training.Trainer, "__init__", cuda_like_init)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    gcfg = GeneratorConfig(**GCFG)
    train(gcfg, TrainConfig(kimg=0.004, **TCFG), InMemoryBatches(data_set(), 4), tmp_path / "ok", progress=False)
    assert torch.backends.cudnn.benchmark is False

    def broken(start):
        yield torch.full((4, 3, 16, 16), float("nan"))

    with pytest.raises(TrainingDiverged):
        train(gcfg, TrainConfig(kimg=1.0, **TCFG), broken, tmp_path / "nan", progress=False)
    assert torch.backends.cudnn.benchmark is False


def test_training_moves_samples_toward_the_data(tmp_path):
    """Data are flat orange images; the untrained G makes grey noise. 60 steps must cut the error 3x."""
    gcfg = GeneratorConfig(**GCFG)
    target = torch.tensor([0.8, 0.2, -0.6])[None, :, None, None]
    torch.manual_seed(0)
    imgs = (target + 0.05 * torch.randn(32, 3, 16, 16)).clamp(-1, 1)
    cfg = TrainConfig(kimg=0.24, **{**TCFG, "pl_weight": 0.0, "r1_interval": 4, "g_lr": 0.01, "d_lr": 0.01,
                                    "ema_kimg": 0.01, "augment": (), "swd_images": 16, "tick_kimg": 0.12})
    from gan.checkpoint import save_generator
    from gan.networks import Generator
    save_generator(Generator(gcfg), tmp_path / "best" / "generator_ema.safetensors", extra={"swd": 0.0})  # stale
    trainer = train(gcfg, cfg, InMemoryBatches(imgs, 4), tmp_path, progress=False, swd_reference=imgs[:16])
    torch.manual_seed(cfg.seed)
    untrained = Generator(gcfg)
    mse = lambda G: float((generate(G, 16, seed=1) - target).square().mean())  # noqa: E731
    before, after = mse(untrained), mse(trainer.G_ema)
    assert after < before / 3, (before, after)
    stats = [json.loads(line) for line in (tmp_path / "stats.jsonl").read_text().splitlines()]
    assert stats[-1]["step"] == 60 and stats[-1]["img_per_s"] > 0
    # SWD is logged untrained, then every tick (its effect is measured on world images in bench/;
    # on these flat images the per-channel normalisation leaves only the noise to compare).
    swds = [r["swd"] for r in stats if "swd" in r]
    assert len(swds) == 3 and all(v > 0 for v in swds), swds
    # best/ holds this run's EMA generator of the tick with the lowest SWD (not the untrained
    # baseline, not a file an earlier run left in the folder)
    best = tmp_path / "best" / "generator_ema.safetensors"
    _, extra = read_generator_metadata(best)
    ticks = [r for r in stats if "swd" in r and r["kimg"] > 0]
    low = min(ticks, key=lambda r: r["swd"])
    assert extra["swd"] == low["swd"] and extra["step"] == low["step"], (extra, ticks)
    same = all(torch.equal(a, b) for a, b in zip(load_generator(best).state_dict().values(),
                                                  trainer.G_ema.state_dict().values()))
    assert same == (low is ticks[-1]), (same, ticks)


def test_best_generator_follows_the_lowest_swd_of_the_ticks(tmp_path):
    """best/ is rewritten only when a tick's SWD beats the one it records, which is the record:
    a trainer resumed from an earlier checkpoint (its history without that tick) keeps it."""
    from gan.training import Trainer, _keep_best

    best = tmp_path / "best" / "generator_ema.safetensors"
    trainer = Trainer(GeneratorConfig(**GCFG), TrainConfig(**TCFG))
    for kimg, swd, saved in [(0.1, 80.0, 80.0), (0.2, 90.0, 80.0), (0.3, 70.0, 70.0), (0.4, 70.0, 70.0)]:
        trainer.state.nimg = int(kimg * 1000)
        _keep_best(trainer, tmp_path, swd)
        extra = read_generator_metadata(best)[1]
        assert extra["swd"] == saved, (kimg, extra)
    assert extra["kimg"] == 0.3
    resumed = Trainer(GeneratorConfig(**GCFG), TrainConfig(**TCFG))  # fresh history, as after --resume
    _keep_best(resumed, tmp_path, 75.0)
    assert read_generator_metadata(best)[1]["swd"] == 70.0


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, out_dir):
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        gcfg = GeneratorConfig(**GCFG)
        cfg = TrainConfig(kimg=0.008, **TCFG)
        data = InMemoryBatches(data_set(), 4, rank=rank, world_size=world)
        tr = train(gcfg, cfg, data, out_dir, progress=False)
        torch.save({"G": flat_params(tr.G), "D": flat_params(tr.D), "w_avg": tr.G.w_avg.clone()},
                   os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_two_process_gloo_keeps_parameters_identical(tmp_path):
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
    torch.manual_seed(0)
    from gan.networks import Generator
    init = flat_params(Generator(GeneratorConfig(**GCFG)))
    assert not torch.equal(init, r0["G"])  # they trained (and still agree)


def test_compiled_steps_match_eager_steps(monkeypatch):
    """train_gan.compile: the same losses and weights as eager steps (same seed), with R1 and path
    length (their double backward stays eager) and DiffAugment in the steps."""
    import torch._inductor.config
    from torch._dynamo.utils import counters

    from gan.training import Trainer

    monkeypatch.setattr(torch._inductor.config, "fallback_random", True)  # the generator's noise as eager draws it
    cfg = dict(TCFG, augment=("translation",), style_mixing=0.9)
    imgs = data_set(8).permute(0, 3, 1, 2).float() / 127.5 - 1
    runs, graphs = {}, {}
    for compiled in (False, True):
        counters.clear()
        trainer = Trainer(GeneratorConfig(**GCFG), TrainConfig(**cfg, compile=compiled))
        stats = [trainer.train_step(imgs[i * 4:(i + 1) * 4]) for i in range(2)]
        runs[compiled] = stats, flat_params(trainer.G), flat_params(trainer.D)
        graphs[compiled] = counters["stats"]["unique_graphs"]
    # mapping, synthesis and D (with and without weight gradients) went through the compiler
    assert graphs[False] == 0 and graphs[True] >= 3
    (s0, g0, d0), (s1, g1, d1) = runs[False], runs[True]
    assert {k for s in s1 for k in s} >= {"loss_d", "loss_g", "r1", "pl"}  # the penalties ran beside them
    for a, b in zip(s0, s1):
        assert a.keys() == b.keys()
        for k in a:
            assert b[k] == pytest.approx(a[k], rel=1e-3, abs=1e-5), k
    assert torch.allclose(g0, g1, atol=1e-4) and torch.allclose(d0, d1, atol=1e-4)
    assert not torch.allclose(g0, flat_params(Trainer(GeneratorConfig(**GCFG), TrainConfig(**cfg)).G))


def test_compile_without_a_compiler_says_so_before_training(monkeypatch):
    import gan.training as training

    monkeypatch.setattr(training.shutil, "which", lambda name: None)
    with pytest.raises(ValueError, match="C\\+\\+ compiler.*train_gan.compile=false"):
        training.Trainer(GeneratorConfig(**GCFG), TrainConfig(**TCFG, compile=True))
    training.Trainer(GeneratorConfig(**GCFG), TrainConfig(**TCFG))  # eager needs none


def test_compile_mode_reaches_torch_compile_and_is_checked(monkeypatch):
    import gan.training as training

    modes = []
    monkeypatch.setattr(training.torch, "compile", lambda fn, mode=None: modes.append(mode) or fn)
    training.Trainer(GeneratorConfig(**GCFG), TrainConfig(**TCFG, compile=True, compile_mode="reduce-overhead"))
    assert modes == ["reduce-overhead"] * 3  # synthesis, mapping, D
    with pytest.raises(ValueError, match="compile_mode: unknown 'fast'"):
        TrainConfig(**TCFG, compile=True, compile_mode="fast")
