"""Boundary solver, conditioning, W+ training and the .npz/.json file format."""
import json

import numpy as np
import pytest

from pipeline.errors import UserError
from pipeline.semantics.boundary import (BoundaryConfig, LinearBoundary, cosine, parse_layers, project_out,
                                         select_samples, train_boundary)
from pipeline.semantics.latent_rows import LatentRows


def planted(n=6000, dim=32, noise=0.5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    direction = rng.standard_normal(dim)
    direction /= np.linalg.norm(direction)
    return x, x @ direction + noise * rng.standard_normal(n), direction


def test_default_solver_recovers_planted_direction_and_separates():
    x, s, direction = planted()
    b = train_boundary(x, s, BoundaryConfig(ratio=0.1))
    assert cosine(b.normal, direction) > 0.98
    assert b.meta["val_accuracy"] > 0.95
    # the middle samples are harder but still far above chance
    assert b.meta["remaining_accuracy"] > 0.65
    assert abs(np.linalg.norm(b.normal) - 1) < 1e-5


def test_default_solver_at_least_as_accurate_as_svc():
    x, s, direction = planted(n=4000, dim=32, noise=1.0, seed=1)
    cfg = dict(ratio=0.05)
    lda = train_boundary(x, s, BoundaryConfig(**cfg))
    svc = train_boundary(x, s, BoundaryConfig(solver="svc", **cfg))
    assert cosine(lda.normal, direction) >= cosine(svc.normal, direction) - 0.01
    assert lda.meta["val_accuracy"] >= svc.meta["val_accuracy"] - 0.02


def test_one_training_row_per_side_falls_back_to_the_difference_of_means():
    """boundary.ratio 0.02 of 120 samples selects 2 per side, one to train on: no within-class
    spread, so a singular covariance; the solver then separates by the means instead of failing."""
    from pipeline.semantics.boundary import solve_lda

    x, s, direction = planted(n=120, noise=0.1)
    b = train_boundary(x, s, BoundaryConfig(ratio=0.02))
    assert np.isfinite(b.normal).all() and abs(np.linalg.norm(b.normal) - 1) < 1e-5
    pos, neg = np.array([[2.0, 1.0, 0.0]]), np.array([[0.0, 1.0, 0.0]])
    w, c = solve_lda(np.concatenate([pos, neg]), np.array([1, 0]))
    assert np.allclose(w / np.linalg.norm(w), [1, 0, 0]) and w @ pos[0] + c > 0 > w @ neg[0] + c


def test_selection_counts_and_disjoint_splits():
    _, s, _ = planted(n=1000)
    sel = select_samples(s, BoundaryConfig(count=100, split=0.7))
    assert len(sel.train_y) == 140 and len(sel.val_y) == 60 and len(sel.rest_y) == 800
    assert sel.train_y.sum() == 70 and sel.val_y.sum() == 30
    rows = np.concatenate([sel.train, sel.val, sel.rest])
    assert sorted(rows.tolist()) == list(range(1000))  # every sample in exactly one split
    top = set(np.argsort(s)[-100:].tolist())
    assert set(sel.train[sel.train_y == 1].tolist()) | set(sel.val[sel.val_y == 1].tolist()) == top
    with pytest.raises(UserError):
        select_samples(s[:10], BoundaryConfig(count=6))


def test_conditional_boundary_is_orthogonal_to_conditions():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5000, 16)).astype(np.float32)
    a, c1, c2 = (v / np.linalg.norm(v) for v in rng.standard_normal((3, 16)))
    # correlated attributes: the target's score leaks the conditions' directions
    s = x @ (a + 0.8 * c1 + 0.5 * c2)
    cond = [LinearBoundary(c1, 0.0, [], {"attribute": "c1"}), LinearBoundary(c2, 0.0, [], {"attribute": "c2"})]
    free = train_boundary(x, s, BoundaryConfig(ratio=0.1))
    conditioned = train_boundary(x, s, BoundaryConfig(ratio=0.1), conditions=cond)
    assert abs(cosine(free.normal, c1)) > 0.3
    assert abs(conditioned.normal @ c1) < 1e-5 and abs(conditioned.normal @ c2) < 1e-5
    assert conditioned.meta["conditions"] == ["c1", "c2"]
    # what is left of the target direction survives
    assert cosine(conditioned.normal, project_out(a, [c1, c2])) > 0.95


def test_project_out_handles_correlated_conditions():
    rng = np.random.default_rng(3)
    c1 = rng.standard_normal(8)
    c2 = c1 + 0.1 * rng.standard_normal(8)
    out = project_out(rng.standard_normal(8), [c1, c2, c1 + c2])
    assert abs(out @ c1) < 1e-8 and abs(out @ c2) < 1e-8 and abs(np.linalg.norm(out) - 1) < 1e-8


def test_wplus_per_layer_normals():
    rng = np.random.default_rng(4)
    n, layers, dim = 3000, 4, 12
    ws = rng.standard_normal((n, layers, dim)).astype(np.float32)
    d = rng.standard_normal(dim)
    d /= np.linalg.norm(d)
    s = ws[:, 2] @ d  # only layer 2 carries the attribute
    b = train_boundary(ws, s, BoundaryConfig(ratio=0.1, space="wplus"), layers=[1, 2])
    assert b.normal.shape == (2, dim) and b.layers == [1, 2]
    assert cosine(b.normal[1], d) > 0.98 and abs(cosine(b.normal[0], d)) < 0.5
    assert b.meta["per_layer"][1]["val_accuracy"] > b.meta["per_layer"][0]["val_accuracy"]


def test_npz_json_round_trip(tmp_path):
    x, s, _ = planted(n=2000, dim=8)
    b = train_boundary(x, s, BoundaryConfig(ratio=0.1), meta={"attribute": "sunny", "gan_sha256": "ab"})
    b.layers = [0, 1, 2]
    path = b.save(tmp_path / "sunny.npz")
    with np.load(path, allow_pickle=False) as z:
        assert set(z.files) == {"normal", "intercept", "layers"}
    meta = json.loads((tmp_path / "sunny.json").read_text())
    assert meta["attribute"] == "sunny" and meta["solver"] == "default" and meta["layers"] == [0, 1, 2]
    back = LinearBoundary.load(path)
    np.testing.assert_allclose(back.normal, b.normal)
    assert float(back.intercept) == pytest.approx(float(b.intercept))
    assert back.layers == [0, 1, 2] and back.meta["val_accuracy"] == b.meta["val_accuracy"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(UserError, match="missing.npz"):
        LinearBoundary.load(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, something=np.zeros(3))
    with pytest.raises(UserError, match="bad.npz.*normal"):
        LinearBoundary.load(bad)


def test_bad_inputs_are_user_errors():
    x, s, _ = planted(n=500, dim=4)
    with pytest.raises(UserError, match="latents but"):
        train_boundary(x, s[:-1])
    with pytest.raises(UserError, match="constant"):
        train_boundary(x, np.zeros(500), BoundaryConfig(ratio=0.1))


def test_boundary_cli_with_plain_arrays_and_condition(tmp_path, capsys):
    from pipeline.cli import main

    rng = np.random.default_rng(5)
    x = rng.standard_normal((3000, 8)).astype(np.float32)
    a, c = np.eye(8)[0], np.eye(8)[1]
    np.save(tmp_path / "w.npy", x)
    np.save(tmp_path / "a.npy", x @ (a + 0.5 * c))
    np.save(tmp_path / "c.npy", x @ c)
    common = ["--latents", str(tmp_path / "w.npy"), "--set", "boundary.ratio=0.1"]
    assert main(["boundary", *common, "--scores", str(tmp_path / "c.npy"), "--attribute", "c",
                 "--out", str(tmp_path / "c.npz")]) == 0
    assert main(["boundary", *common, "--scores", str(tmp_path / "a.npy"), "--attribute", "a",
                 "--condition", str(tmp_path / "c.npz"), "--layers", "0-2", "--out", str(tmp_path / "a.npz")]) == 0
    b = LinearBoundary.load(tmp_path / "a.npz")
    assert b.layers == [0, 1, 2] and b.meta["conditions"] == ["c"] and b.meta["accuracies"]["validation"] > 0.9
    assert abs(b.normal @ LinearBoundary.load(tmp_path / "c.npz").normal) < 1e-5
    assert "val accuracy" in capsys.readouterr().out
    # bad input: a user error naming the file, exit 2
    (tmp_path / "bad.npy").write_text("not an array")
    assert main(["boundary", *common, "--scores", str(tmp_path / "bad.npy"), "--attribute", "a",
                 "--out", str(tmp_path / "x.npz")]) == 2
    assert "bad.npy" in capsys.readouterr().err


def write_shard(folder, w, chunk, scores):
    """A sample shard as `photoedit sample` lays it out (manifest, chunks/*.npz with z, w, seeds) + scores."""
    from gan.shards import FORMAT

    (folder / "chunks").mkdir(parents=True)
    for c, lo in enumerate(range(0, len(w), chunk)):
        rows = slice(lo, lo + chunk)
        np.savez(folder / "chunks" / f"{c:06d}.npz", z=-w[rows], w=w[rows], seeds=np.arange(len(w))[rows])
    manifest = {"format": FORMAT, "n": len(w), "chunk": chunk, "gan_sha256": "ab" * 32}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    np.savez(folder / "scores_photometric.npz", **scores)
    return folder


def test_boundary_read_from_disk_equals_fully_loaded_arrays(tmp_path):
    # 2050 rows in chunks of 64: the last chunk is short, and the selected rows fall in every chunk
    x, s, direction = planted(n=2050, dim=12, noise=0.5, seed=7)
    shard = write_shard(tmp_path / "shard", x, 64, {"sunny": s.astype(np.float32)})
    np.save(tmp_path / "w.npy", x)
    np.save(tmp_path / "s.npy", s.astype(np.float32))
    cfg = BoundaryConfig(ratio=0.1)
    full = train_boundary(x, s.astype(np.float32), cfg)  # every latent in memory
    from pipeline.cli import main

    arrays = ["--latents", str(tmp_path / "w.npy"), "--scores", str(tmp_path / "s.npy")]
    for args in (["--samples", str(shard)], arrays):
        out = tmp_path / f"{args[0][2:]}.npz"
        assert main(["boundary", *args, "--attribute", "sunny", "--set", "boundary.ratio=0.1", "--out", str(out)]) == 0
        b = LinearBoundary.load(out)
        np.testing.assert_allclose(b.normal, full.normal, atol=1e-6)
        assert float(b.intercept) == pytest.approx(float(full.intercept), abs=1e-6)
        for k in ("train_accuracy", "val_accuracy", "remaining_accuracy"):
            assert b.meta[k] == full.meta[k]
    assert LinearBoundary.load(tmp_path / "samples.npz").meta["gan_sha256"] == "ab" * 32  # provenance kept
    # the accuracies, recomputed here from the loaded arrays, are the streamed ones
    sel = select_samples(s.astype(np.float32), cfg)
    decision = x @ full.normal + full.intercept
    assert np.mean((decision[sel.rest] > 0) == sel.rest_y) == pytest.approx(full.meta["remaining_accuracy"])
    assert np.mean((decision[sel.val] > 0) == sel.val_y) == pytest.approx(full.meta["val_accuracy"])
    assert cosine(full.normal, direction) > 0.95


def test_latent_rows_gather_and_stream_across_blocks(tmp_path, monkeypatch):
    import pipeline.semantics.latent_rows as latent_rows

    rng = np.random.default_rng(8)
    x = rng.standard_normal((1000, 3, 5)).astype(np.float32)
    np.save(tmp_path / "x.npy", x.astype(np.float64))  # float64 on disk: rows come back as float32
    monkeypatch.setattr(latent_rows, "BLOCK_BYTES", 7 * 3 * 5 * 8)  # 7 rows per block
    write_shard(tmp_path / "shard", x, 33, {})
    sources = [LatentRows.from_npy(tmp_path / "x.npy"), LatentRows.from_array(x),
               LatentRows.from_shard(tmp_path / "shard", "w")]
    index = rng.integers(0, 1000, 300)
    for rows in sources:
        assert rows.shape == (1000, 3, 5) and len(rows.bounds) > 2
        np.testing.assert_array_equal(rows.take(index), x[index])
        streamed = np.concatenate([block.copy() for _, block in rows.blocks()])  # a block lives until the next
        assert streamed.dtype == np.float32
        np.testing.assert_array_equal(streamed, x)


def test_shard_errors_are_user_errors_naming_the_file(tmp_path, capsys):
    from pipeline.cli import main

    x, s, _ = planted(n=300, dim=4)
    shard = write_shard(tmp_path / "shard", x, 64, {"sunny": s})
    run = ["boundary", "--samples", str(shard), "--attribute", "sunny", "--out", str(tmp_path / "b.npz")]
    assert main(run + ["--space", "wplus"]) == 2
    assert "'ws'" in capsys.readouterr().err
    (shard / "chunks" / "000002.npz").unlink()
    assert main(run) == 2
    assert "000002.npz" in capsys.readouterr().err and not (tmp_path / "b.npz").exists()


def test_boundary_command_loads_no_torch(tmp_path):
    """`photoedit boundary` is numpy-only: importing torch would cost seconds and ~0.5 GB."""
    import subprocess
    import sys

    x, s, _ = planted(n=400, dim=4)
    shard = write_shard(tmp_path / "shard", x, 64, {"sunny": s})
    code = ("import sys; from pipeline.cli import main; "
            f"rc = main(['boundary', '--samples', {str(shard)!r}, '--attribute', 'sunny', "
            f"'--out', {str(tmp_path / 'b.npz')!r}]); "
            "print('rc', rc, 'heavy', sorted(m for m in ('torch', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "rc 0 heavy []" in out, out
    assert (tmp_path / "b.npz").is_file()


def test_parse_layers():
    assert parse_layers("1-2,6") == [1, 2, 6] and parse_layers("3") == [3] and parse_layers(None) is None
    with pytest.raises(UserError, match="layers 'a-b'"):
        parse_layers("a-b")


def test_blas_runs_on_one_thread_unless_the_environment_says_otherwise(monkeypatch):
    from threadpoolctl import threadpool_info

    from pipeline.semantics.boundary import blas_threads

    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    blas = lambda: [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]  # noqa: E731
    if not blas():
        pytest.skip("numpy reports no BLAS thread pool")
    with blas_threads():
        assert set(blas()) == {1}
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    before = blas()
    with blas_threads():
        assert blas() == before  # the user's choice stands
