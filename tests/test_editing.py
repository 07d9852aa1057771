"""Layer-wise W+ editing: only chosen layers move, by exactly `strength`, for any truncation psi."""
import numpy as np
import pytest
import torch

from pipeline.semantics.boundary import LinearBoundary
from pipeline.semantics.editing import edit_w, edit_ws, truncate



def unit(dim, seed=0):
    v = np.random.default_rng(seed).standard_normal(dim)
    return v / np.linalg.norm(v)


def test_edit_moves_only_chosen_layers_by_strength():
    torch.manual_seed(0)
    ws = torch.randn(5, 8, 16)
    b = LinearBoundary(unit(16), 0.0, layers=[])
    out = edit_ws(ws, b, 2.5, layers=[1, 3])
    delta = out - ws
    moved = delta.norm(dim=2)
    assert torch.allclose(moved[:, [1, 3]], torch.full((5, 2), 2.5), atol=1e-5)
    assert moved[:, [0, 2, 4, 5, 6, 7]].abs().max() == 0
    assert torch.allclose(delta[0, 1], torch.tensor(2.5 * b.normal))
    assert not torch.equal(out, ws)  # input untouched, a new tensor returned


def test_default_layers_come_from_the_boundary_and_per_sample_strength():
    ws = np.zeros((3, 6, 4), dtype=np.float32)
    b = LinearBoundary(unit(4, 1), 0.0, layers=[0, 2])
    out = edit_ws(ws, b, np.array([-1.0, 0.0, 3.0]))
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    proj = out @ b.normal
    np.testing.assert_allclose(proj[:, 0], [-1, 0, 3], atol=1e-6)
    np.testing.assert_allclose(proj[:, 2], [-1, 0, 3], atol=1e-6)
    assert np.abs(proj[:, [1, 3, 4, 5]]).max() == 0


def test_per_layer_normals_use_their_own_rows():
    normals = np.stack([unit(4, 2), unit(4, 3)])
    b = LinearBoundary(normals, np.zeros(2), layers=[1, 4])
    out = edit_ws(torch.zeros(2, 6, 4), b, 1.0)
    assert torch.allclose(out[0, 1], torch.tensor(normals[0], dtype=torch.float32))
    assert torch.allclose(out[0, 4], torch.tensor(normals[1], dtype=torch.float32))
    with pytest.raises(ValueError, match="per-layer"):
        edit_ws(torch.zeros(2, 6, 4), b, 1.0, layers=[2])


def test_step_is_the_same_distance_for_every_truncation_psi():
    torch.manual_seed(1)
    w = torch.randn(4, 8) * 3
    w_avg = torch.randn(8)
    b = LinearBoundary(unit(8, 4), 0.3, layers=[])
    for psi in (1.0, 0.7, 0.5):
        before = truncate(w, w_avg, psi).unsqueeze(1).repeat(1, 3, 1)
        after = edit_w(w, b, 3.0, num_ws=3, w_avg=w_avg, truncation_psi=psi)
        dist_change = torch.from_numpy(b.decision((after).numpy()) - b.decision(before.numpy()))
        assert torch.allclose(dist_change, torch.full((4,), 3.0, dtype=torch.float64), atol=1e-4)
    with pytest.raises(ValueError, match="w_avg"):
        edit_w(w, b, 1.0, num_ws=3, truncation_psi=0.5)


def test_shape_errors():
    b = LinearBoundary(unit(4), 0.0, layers=[])
    with pytest.raises(ValueError, match="num_ws"):
        edit_ws(torch.zeros(2, 4), b, 1.0)
    with pytest.raises(ValueError, match="out of range"):
        edit_ws(torch.zeros(2, 3, 4), b, 1.0, layers=[5])
    with pytest.raises(ValueError, match="strength"):
        edit_ws(torch.zeros(2, 3, 4), b, [1.0, 2.0, 3.0])
