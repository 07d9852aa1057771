"""Augmentation transforms: images edited as EditPipeline edits them, labels untouched."""
from __future__ import annotations

import copy
import pickle

import albumentations as A
import numpy as np
import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from test_edit import make_bundle, textured_photo
from translators import transforms as T
from translators.transforms import Attribute, AttributeV2, load_pipeline


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return str(make_bundle(tmp_path_factory.mktemp("models"), "night"))


@pytest.fixture
def photo():
    return textured_photo(72, 96, seed=1)


@pytest.mark.filterwarnings("ignore:Got processor:UserWarning")
def test_albumentations_edits_image_and_keeps_mask_boxes_keypoints(bundle, photo):
    rng = np.random.default_rng(0)
    mask = rng.integers(0, 19, photo.shape[:2]).astype(np.uint8)
    boxes = [(10, 5, 40, 30), (50, 20, 90, 70)]
    points = [(12.0, 7.0), (80.5, 60.25)]
    aug = A.Compose([Attribute(bundle, strength=(0.3, 1.0), p=1.0)], seed=7, save_applied_params=True,
                    bbox_params=A.BboxParams(format="pascal_voc", label_fields=["labels"]),
                    keypoint_params=A.KeypointParams(format="xy"))
    out = aug(image=photo, mask=mask, bboxes=boxes, labels=[1, 2], keypoints=points)

    assert out["mask"].tobytes() == mask.tobytes() and out["mask"].dtype == mask.dtype
    assert np.allclose(np.asarray(out["bboxes"]), boxes) and list(out["labels"]) == [1, 2]
    assert np.allclose(np.asarray(out["keypoints"])[:, :2], points)
    (name, params), = out["applied_transforms"]
    s = params["strength"]
    assert name == "Attribute" and 0.3 <= s <= 1.0
    expected = load_pipeline(bundle)(photo, strength=s).image
    assert out["image"].dtype == np.uint8 and out["image"].shape == photo.shape
    assert np.abs(out["image"].astype(int) - photo).mean() > 2  # a visible edit
    assert np.array_equal(out["image"], expected)  # exactly EditPipeline at the drawn strength


def test_albumentations_serialises_and_draws_strength_per_call(bundle, photo):
    aug = A.Compose([Attribute(bundle, strength=(0.2, 0.9), p=1.0)], seed=3, save_applied_params=True)
    again = A.from_dict(A.to_dict(aug))
    t = again.transforms[0]
    assert isinstance(t, Attribute)
    assert (t.attribute, tuple(t.strength), t.models_dir, t.device) == (bundle, (0.2, 0.9), None, "cpu")
    again.set_random_seed(3)
    a, b = aug(image=photo), again(image=photo)
    assert np.array_equal(a["image"], b["image"])
    drawn = {aug(image=photo)["applied_transforms"][0][1]["strength"] for _ in range(3)}
    assert len(drawn) == 3 and all(0.2 <= s <= 0.9 for s in drawn)


def test_albumentations_p_zero_and_float_images(bundle, photo):
    off = A.Compose([Attribute(bundle, p=0.0)], seed=0)(image=photo)["image"]
    assert off is photo or np.array_equal(off, photo)
    f = photo.astype(np.float32) / 255
    out = A.Compose([Attribute(bundle, strength=0.8, p=1.0)], seed=0)(image=f)["image"]
    assert out.dtype == np.float32 and out.shape == f.shape and 0 <= out.min() and out.max() <= 1
    assert np.abs(out - load_pipeline(bundle)(f, strength=0.8).image).max() < 1e-6


def test_apply_to_images_batches_and_matches_one_by_one(bundle, photo, monkeypatch):
    images = np.stack([photo, photo[::-1].copy(), np.ascontiguousarray(photo[:, ::-1])])
    pipe = load_pipeline(bundle)
    calls = []
    real = pipe.run_network
    monkeypatch.setattr(pipe, "run_network", lambda batch, s: calls.append(len(batch)) or real(batch, s))
    out = A.Compose([Attribute(bundle, strength=0.7, p=1.0)], seed=0)(images=images)["images"]
    assert out.shape == images.shape and calls == [3]  # one network call for the batch
    for im, o in zip(images, out):
        one = pipe(im, strength=0.7).image
        assert np.abs(o.astype(int) - one).max() <= 1  # batching changes only float rounding


def test_pipeline_loaded_once_per_process_and_transform_pickles_small(bundle, photo, monkeypatch):
    from translators.inference import EditPipeline

    monkeypatch.setattr(T, "_PIPELINES", {})
    loads = []
    orig = EditPipeline.from_pretrained.__func__
    monkeypatch.setattr(EditPipeline, "from_pretrained",
                        classmethod(lambda cls, *a, **k: loads.append(a) or orig(cls, *a, **k)))
    t = Attribute(bundle, strength=0.5, p=1.0)
    for _ in range(3):
        t(image=photo)
    AttributeV2(bundle, strength=0.5, p=1.0)(torch.from_numpy(photo).permute(2, 0, 1))
    assert len(loads) == 1
    # The transform carries settings, not the network: cheap to send to DataLoader workers.
    assert len(pickle.dumps(t)) < 16_000 and b"EditPipeline" not in pickle.dumps(t)
    clone = copy.deepcopy(t)  # the same __reduce__ a worker process unpickles, without loading a pickle
    assert np.array_equal(clone(image=photo)["image"], t(image=photo)["image"]) and len(loads) == 1


class _EditedPhotos(torch.utils.data.Dataset):
    def __init__(self, transform, photo):
        self.transform, self.photo = transform, photo

    def __len__(self):
        return 4

    def __getitem__(self, i):
        import os

        image = self.transform(image=self.photo)["image"]
        pipe = load_pipeline(self.transform.attribute)
        mine = [k for k in T._PIPELINES if k[0] == os.getpid()]
        return os.getpid(), id(pipe), len(mine), torch.from_numpy(image)


def test_each_dataloader_worker_loads_its_own_pipeline_once(bundle, photo):
    import os

    load_pipeline(bundle)  # the parent's copy must not be reused by forked workers
    t = Attribute(bundle, strength=0.5, p=1.0)
    loader = torch.utils.data.DataLoader(_EditedPhotos(t, photo), batch_size=None, num_workers=2,
                                         multiprocessing_context="fork")
    rows = list(loader)
    pids = {int(r[0]) for r in rows}
    assert os.getpid() not in pids and len(pids) == 2
    for pid in pids:
        mine = [r for r in rows if int(r[0]) == pid]
        assert len({int(r[1]) for r in mine}) == 1 and all(int(r[2]) == 1 for r in mine)
    expected = load_pipeline(bundle)(photo, strength=0.5).image
    assert all(np.array_equal(r[3].numpy(), expected) for r in rows)


def test_torchvision_changes_image_never_boxes_or_mask(bundle, photo):
    img = tv_tensors.Image(torch.from_numpy(photo).permute(2, 0, 1))
    boxes = tv_tensors.BoundingBoxes([[10, 5, 40, 30], [50, 20, 90, 70]], format="XYXY", canvas_size=photo.shape[:2])
    mask = tv_tensors.Mask(torch.randint(0, 19, photo.shape[:2], generator=torch.Generator().manual_seed(0)))
    target = {"boxes": boxes, "masks": mask, "labels": torch.tensor([1, 2])}
    t = AttributeV2(bundle, strength=(0.3, 1.0), p=1.0)
    torch.manual_seed(5)
    s = t.make_params([])["strength"]
    torch.manual_seed(5)
    out_img, out_target = v2.Compose([t])(img, target)

    assert out_target["boxes"] is boxes and out_target["masks"] is mask  # passed through, not copied
    assert torch.equal(out_target["labels"], target["labels"])
    assert isinstance(out_img, tv_tensors.Image) and out_img.dtype == torch.uint8 and out_img.shape == img.shape
    expected = load_pipeline(bundle)(photo, strength=s).image
    assert torch.equal(out_img, torch.from_numpy(expected).permute(2, 0, 1))
    assert (out_img.int() - img.int()).abs().float().mean() > 2


def test_torchvision_plain_float_batch_and_pil(bundle, photo):
    from PIL import Image

    t = AttributeV2(bundle, strength=0.6, p=1.0)
    x = torch.from_numpy(np.stack([photo, photo[::-1].copy()])).permute(0, 3, 1, 2).float() / 255
    mask = torch.zeros(photo.shape[:2], dtype=torch.uint8)
    y, m = t(x, tv_tensors.Mask(mask))
    assert type(y) is torch.Tensor and y.dtype == torch.float32 and y.shape == x.shape
    assert torch.equal(m, mask)
    one = load_pipeline(bundle)(photo.astype(np.float32) / 255, strength=0.6).image
    assert np.abs(y[0].permute(1, 2, 0).numpy() - one).max() < 2 / 255
    pil = t(Image.fromarray(photo))
    assert isinstance(pil, Image.Image) and pil.size == (photo.shape[1], photo.shape[0])
    assert AttributeV2(bundle, p=0.0)(x) is x


def test_non_rgb_input_is_a_clear_error(bundle):
    with pytest.raises(ValueError, match="RGB"):
        A.Compose([Attribute(bundle, p=1.0)])(image=np.zeros((16, 16, 1), np.uint8))
    with pytest.raises(ValueError, match="RGB"):
        AttributeV2(bundle, p=1.0)(torch.zeros(1, 16, 16))
