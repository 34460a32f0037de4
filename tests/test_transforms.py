import numpy as np
import pytest
import torch

from video_mae.data.transforms import EvalClipTransform, TrainClipTransform, multi_scale_crop_box

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def moving_frames(t=8, h=60, w=80):
    """Frame k = one fixed random picture plus k (a brightness offset)."""
    base = np.random.default_rng(0).integers(0, 200, size=(h, w, 3))
    return np.stack([base + 5 * k for k in range(t)]).astype(np.uint8)


@pytest.mark.parametrize("seed", range(6))
def test_one_crop_and_flip_for_every_frame(seed):
    transform = TrainClipTransform(32, MEAN, STD, flip=True)
    clip = transform(moving_frames(), np.random.default_rng(seed))
    assert clip.shape == (3, 8, 32, 32) and clip.dtype == torch.float32
    # Frames differ from the first only by the brightness offset: same box, same flip.
    pixels = clip * torch.tensor(STD).view(3, 1, 1, 1) + torch.tensor(MEAN).view(3, 1, 1, 1)
    diffs = pixels - pixels[:, :1]
    for k in range(8):
        assert torch.allclose(diffs[:, k], torch.full_like(diffs[:, k], 5 * k / 255), atol=1e-4)


def test_crop_boxes_vary_and_stay_inside():
    boxes = {multi_scale_crop_box(60, 80, 32, (1.0, 0.875, 0.75, 0.66), 1, np.random.default_rng(s)) for s in range(50)}
    assert len(boxes) > 10
    for top, left, h, w in boxes:
        assert 0 <= top and top + h <= 60 and 0 <= left and left + w <= 80
        assert h in (60, 52, 45, 39) and w in (60, 52, 45, 39)


def test_normalisation_values():
    frames = np.full((2, 40, 40, 3), 255, np.uint8)
    clip = EvalClipTransform(32, MEAN, STD)(frames)
    expected = (1 - torch.tensor(MEAN)) / torch.tensor(STD)
    assert torch.allclose(clip[:, 0, 0, 0], expected)


def test_eval_transform_is_a_deterministic_centre_crop():
    frames = moving_frames(h=48, w=96)
    transform = EvalClipTransform(32, MEAN, STD)
    a, b = transform(frames), transform(frames)
    assert torch.equal(a, b) and a.shape == (3, 8, 32, 32)


def test_flip_happens_for_some_seeds_only():
    frames = moving_frames(t=1)
    transform = TrainClipTransform(60, MEAN, STD, scales=(1.0,), flip=True)
    outputs = [transform(frames, np.random.default_rng(s)) for s in range(10)]
    flipped = [torch.allclose(o, outputs[0].flip(-1)) for o in outputs]
    assert any(flipped) and not all(flipped)
