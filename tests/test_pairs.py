"""Pairs from a (tiny, random) GAN, and the pairs -> train-translator -> eval-translator commands."""
import json

import numpy as np
import pytest
import torch

from gan.checkpoint import save_generator
from gan.networks import Generator, GeneratorConfig
from pipeline.semantics.boundary import LinearBoundary
from pipeline.cli import main
from pipeline.semantics.pairs import GANPairStream, PairFilter, PairsConfig, PairShardDataset, render_pairs, write_pairs


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # shared test machine: avoid OpenMP spin contention
    yield
    torch.set_num_threads(before)


def tiny_gan():
    torch.manual_seed(0)
    G = Generator(GeneratorConfig(z_dim=16, w_dim=16, resolution=(16, 32), mapping_layers=2, channels=(16, 16, 8)))
    with torch.no_grad():  # non-zero noise strengths, so "same noise" is really tested
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.5)
    return G.eval()


def tiny_boundary(attribute="sunny"):
    n = np.random.RandomState(0).randn(16)
    return LinearBoundary(normal=n / np.linalg.norm(n), intercept=0.0, layers=[0, 1, 2, 3],
                          meta={"attribute": attribute})


def test_pairs_share_noise_and_strength_zero_is_identical():
    G, b = tiny_gan(), tiny_boundary()
    for mode in ("const", "random"):
        x, y = render_pairs(G, b, [3, 4], torch.zeros(2), noise_mode=mode)
        assert torch.equal(x, y), mode  # a = 0: the only difference would be noise
        x2, y2 = render_pairs(G, b, [3, 4], torch.full((2,), 3.0), noise_mode=mode)
        assert torch.equal(x2, x) and (y2 - x2).abs().mean() > 1e-3
    # random noise really is random between calls (so equality above is not trivial)
    xa, _ = render_pairs(G, b, [3], torch.zeros(1), noise_mode="random", noise_seed=1)
    xb, _ = render_pairs(G, b, [3], torch.zeros(1), noise_mode="random", noise_seed=2)
    assert not torch.equal(xa, xb)


def test_write_read_and_stream_agree(tmp_path):
    G, b = tiny_gan(), tiny_boundary()
    cfg = PairsConfig(n=7, batch=3, shard_size=4, strength_range=(1.0, 2.0))
    m = write_pairs(G, b, cfg, tmp_path / "p", {"gan_sha256": "test"})
    assert [s["n"] for s in m["shards"]] == [4, 3] and m["attribute"] == "sunny"
    data = PairShardDataset(tmp_path / "p")
    assert len(data) == 7
    stream = list(GANPairStream(G, b, cfg, limit=7))
    for i in (0, 6):
        x, y, a = data[i]
        sx, sy, sa = stream[i]
        assert 1.0 <= a <= 2.0 and abs(a - sa) < 1e-6
        assert (x - sx).abs().max() <= 1 / 127.5 + 1e-6  # uint8 on disk
    # resuming a stream at pair k gives pair k
    resumed = GANPairStream(G, b, cfg, limit=7)
    resumed.configure_stream(start=5)
    assert torch.equal(next(iter(resumed))[0], stream[5][0])
    with pytest.raises(Exception, match="already holds pairs"):
        write_pairs(G, b, cfg, tmp_path / "p", {})


def test_filter_reports_kept_fraction(tmp_path):
    G, b = tiny_gan(), tiny_boundary()
    cfg = PairsConfig(n=4, batch=4, filter_predictor="photometric", margin=-1.0)  # keeps all
    m = write_pairs(G, b, cfg, tmp_path / "all", {})
    assert m["filter"]["kept_fraction"] == 1.0
    strict = PairsConfig(n=4, batch=4, filter_predictor="photometric", margin=2.0, max_attempts=2)  # keeps none
    with pytest.raises(Exception, match="passed the 'photometric' filter"):
        write_pairs(G, b, strict, tmp_path / "none", {})
    # streamed into training there is no n: the stream gives up after 4 x batch x max_attempts candidates
    with pytest.raises(Exception, match=r"only 0 of 32 GAN pairs passed the 'photometric' filter"):
        next(iter(GANPairStream(G, b, strict, PairFilter("photometric", "sunny", 2.0))))


def test_filter_takes_a_trained_classifier_from_its_folder(tmp_path, capsys):
    """`--filter-predictor classifier --filter-predictor-path DIR`: the filter scores the
    pairs with the user's own predictor, and names the problem when it cannot."""
    from PIL import Image

    from pipeline.semantics.predictors.classifier import PredictorConfig, folder_data, train_classifier

    rng = np.random.default_rng(0)
    for label, lo, hi in (("yes", 0.6, 1.0), ("no", 0.0, 0.4)):
        for i, c in enumerate(rng.uniform(lo, hi, (12, 3))):
            folder = tmp_path / "labels" / "sunny" / label
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((16, 16, 3), c * 255, np.uint8)).save(folder / f"{i}.png")
    cfg = PredictorConfig(width=8, input_size=(16, 16), epochs=4, batch=8)
    images, targets = folder_data(tmp_path / "labels", cfg)
    train_classifier(images, targets, cfg, tmp_path / "pred", log=lambda *_: None)

    G, b = tiny_gan(), tiny_boundary()
    keep_all = PairsConfig(n=4, batch=4, filter_predictor="classifier", filter_predictor_path=str(tmp_path / "pred"),
                           margin=-1.5)  # probabilities move by at most 1: every pair passes
    m = write_pairs(G, b, keep_all, tmp_path / "all", {})
    assert m["filter"]["kept_fraction"] == 1.0 and m["filter"]["predictor_path"] == str(tmp_path / "pred")
    with pytest.raises(Exception, match="passed the 'classifier' filter"):
        write_pairs(G, b, PairsConfig(n=4, batch=4, filter_predictor="classifier", max_attempts=1,
                                      filter_predictor_path=str(tmp_path / "pred"), margin=1.0), tmp_path / "none", {})
    with pytest.raises(Exception, match="does not score 'night'"):
        write_pairs(G, tiny_boundary("night"), keep_all, tmp_path / "night", {})
    with pytest.raises(Exception, match="classifier predictor needs path"):  # no path: says what is missing
        write_pairs(G, b, PairsConfig(n=4, filter_predictor="classifier"), tmp_path / "nopath", {})


def test_commands_pairs_train_eval(tmp_path, capsys):
    gan = save_generator(tiny_gan(), tmp_path / "g.safetensors")
    bnd = tiny_boundary().save(tmp_path / "sunny.npz")
    assert main(["pairs", "--gan", str(gan), "--boundary", str(bnd), "--n", "16",
                 "--strength-range", "1,3", "--out", str(tmp_path / "pairs")]) == 0
    tiny = ["--set", "translator.ngf=4", "--set", "translator.n_downsample=2", "--set", "translator.n_blocks=1",
            "--set", "train_translator.steps=4", "--set", "train_translator.batch=4", "--set", "train_translator.ndf=4",
            "--set", "train_translator.n_layers_d=2", "--quiet"]
    bundle = tmp_path / "models" / "sunny"
    assert main(["train-translator", "--pairs", str(tmp_path / "pairs"), "--out", str(bundle)] + tiny) == 0
    cfg = json.loads((bundle / "config.json").read_text())
    assert cfg["attribute"] == "sunny" and cfg["strength_range"] == [1.0, 3.0] and cfg["resolution"] == [16, 32]
    assert len(cfg["provenance"]["gan_sha256"]) == 64 and cfg["provenance"]["layers"] == [0, 1, 2, 3]
    assert (tmp_path / "models" / "sunny.run" / "stats.jsonl").read_text().strip()
    capsys.readouterr()
    before = (bundle / "config.json").read_bytes()
    assert main(["eval-translator", str(bundle), "--n-pairs", "4", "--n-world", "3", "--n-oracle", "4", "--json"]) == 0
    assert (bundle / "config.json").read_bytes() == before  # printing only: the bundle is untouched
    capsys.readouterr()
    assert main(["eval-translator", str(bundle), "--n-pairs", "4", "--n-world", "3", "--n-oracle", "4", "--json", "--write"]) == 0
    r = json.loads(capsys.readouterr().out)
    for key in ("heldout_pairs", "world"):  # provenance found the GAN and boundary
        assert set(r[key]) >= {"psnr_gain_db", "ssim_gain"}
    assert isinstance(r["strength_monotonic"], bool)
    assert json.loads((bundle / "config.json").read_text())["metrics"]["world"]["n"] == 3
    assert cfg["edit"] == {"eps": 0.01}  # the default preset's (quickstart) carry, which edits use too
    # streamed pairs straight from the GAN, no pairs folder; a preset's carry eps is recorded in the bundle
    assert main(["train-translator", "--gan", str(gan), "--boundary", str(bnd), "--out",
                 str(tmp_path / "models" / "streamed"), "--set", "edit.eps=0.02"] + tiny) == 0
    assert json.loads((tmp_path / "models" / "streamed" / "config.json").read_text())["edit"] == {"eps": 0.02}
    # user errors, not tracebacks
    assert main(["train-translator", "--pairs", str(tmp_path / "nope"), "--out", str(tmp_path / "x")] + tiny) == 2
    assert main(["train-translator", "--out", str(tmp_path / "x")]) == 2


def _filtered_stream(G, b):
    """A stream whose filter drops most candidates (photometric sunny must not fall: ~1 in 5 kept here)."""
    return GANPairStream(G, b, PairsConfig(batch=4, strength_range=[0.5, 3.0]), PairFilter("photometric", "sunny", -0.01))


def test_a_filtered_stream_resumes_at_its_place():
    G, b = tiny_gan(), tiny_boundary()
    full = _filtered_stream(G, b)
    it = iter(full)
    [next(it) for _ in range(6)]
    pos = full.stream_position()
    rest = [next(it) for _ in range(6)]
    assert pos["start"] >= 6 and pos["start"] % 4 == 0  # more candidates tried than pairs handed out
    again = _filtered_stream(G, b)
    again.configure_stream(**pos)
    it2 = iter(again)
    for x, y, a in rest:
        x2, y2, a2 = next(it2)
        assert torch.equal(x, x2) and torch.equal(y, y2) and a == a2
    # what a trainer did before: start at the count of pairs handed out, and see other pairs
    naive = _filtered_stream(G, b)
    naive.configure_stream(start=6)
    assert not torch.equal(next(iter(naive))[0], rest[0][0])


def test_a_translator_on_a_filtered_stream_resumes_exactly(tmp_path):
    from translators.networks import TranslatorConfig
    from translators.training import TrainTranslatorConfig, TranslatorTrainer, train_translator

    G, b = tiny_gan(), tiny_boundary()
    arch = TranslatorConfig(ngf=4, n_downsample=2, n_blocks=1, film_hidden=4)
    cfg = TrainTranslatorConfig(batch=2, steps=6, log_every=2, grid_every=100, snapshot_every=3, lambda_gan=0.0,
                                lambda_feat=0.0)
    full, _ = train_translator(_filtered_stream(G, b), arch, cfg, tmp_path / "full", 3.0, progress=False)
    TranslatorTrainer(_filtered_stream(G, b), arch, cfg, tmp_path / "cut", 3.0, log=lambda m: None).run(
        progress=False, until=3)
    resumed = TranslatorTrainer(_filtered_stream(G, b), arch, cfg, tmp_path / "cut", 3.0, resume=True,
                                log=lambda m: None)
    assert resumed.step == 3
    resumed.run(progress=False)
    # and in one process, run() to step 3 then on
    twice = TranslatorTrainer(_filtered_stream(G, b), arch, cfg, tmp_path / "twice", 3.0, log=lambda m: None)
    twice.run(progress=False, until=3)
    twice.run(progress=False)
    for (name, p), q, r in zip(full.state_dict().items(), resumed.G.state_dict().values(), twice.G.state_dict().values()):
        assert torch.equal(p, q) and torch.equal(p, r), name


def _ddp_filtered_worker(rank, world, init_file, out_dir):
    import torch.distributed as dist

    from translators.networks import TranslatorConfig
    from translators.training import TrainTranslatorConfig, TranslatorTrainer

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        G, b = tiny_gan(), tiny_boundary()
        arch = TranslatorConfig(ngf=4, n_downsample=2, n_blocks=1, film_hidden=4)
        cfg = TrainTranslatorConfig(batch=2, steps=4, log_every=2, grid_every=100, snapshot_every=2, lambda_gan=0.0,
                                    lambda_feat=0.0)
        full = TranslatorTrainer(_filtered_stream(G, b), arch, cfg, f"{out_dir}/full", 3.0, log=lambda m: None)
        full.run(progress=False)
        TranslatorTrainer(_filtered_stream(G, b), arch, cfg, f"{out_dir}/cut", 3.0, log=lambda m: None).run(
            progress=False, until=2)
        cut = TranslatorTrainer(_filtered_stream(G, b), arch, cfg, f"{out_dir}/cut", 3.0, resume=True,
                                log=lambda m: None)
        cut.run(progress=False)
        torch.save({"full": full.G.state_dict(), "resumed": cut.G.state_dict()}, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_ranks_on_filtered_streams_resume_exactly(tmp_path):
    """Under DDP each rank's filter drops different candidates: every rank's place is kept."""
    import torch.multiprocessing as mp

    mp.spawn(_ddp_filtered_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    state = torch.load(tmp_path / "cut" / "state.pt", weights_only=True)
    assert len(state["stream"]) == 2 and state["stream"][0] != state["stream"][1]
    for rank in (0, 1):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        for name, p in got["full"].items():
            assert torch.equal(p, got["resumed"][name]), (rank, name)
