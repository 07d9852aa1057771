"""Boundary solver, conditioning, W+ training and the .npz/.json file format."""
import json

import numpy as np
import pytest

from pipeline.semantics.boundary import (BoundaryConfig, LinearBoundary, cosine, project_out, select_samples,
                               train_boundary)
from pipeline.errors import UserError



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


def test_selection_counts_and_disjoint_splits():
    x, s, _ = planted(n=1000)
    sel = select_samples(x, s, BoundaryConfig(count=100, split=0.7))
    assert len(sel.train_y) == 140 and len(sel.val_y) == 60 and len(sel.rest_y) == 800
    assert sel.train_y.sum() == 70 and sel.val_y.sum() == 30
    with pytest.raises(UserError):
        select_samples(x[:10], s[:10], BoundaryConfig(count=6))


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
