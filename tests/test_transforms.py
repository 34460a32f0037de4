import numpy as np
import pytest
import torch

from video_mae.data.transforms import EvalClipTransform, MultiScaleCropTransform, multi_scale_crop_box

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def moving_frames(t=8, h=60, w=80):
    """Frame k = one fixed random picture plus k (a brightness offset)."""
    base = np.random.default_rng(0).integers(0, 200, size=(h, w, 3))
    return np.stack([base + 5 * k for k in range(t)]).astype(np.uint8)


@pytest.mark.parametrize("seed", range(6))
def test_one_crop_and_flip_for_every_frame(seed):
    transform = MultiScaleCropTransform(32, MEAN, STD, flip=True)
    clip = transform(moving_frames(), np.random.default_rng(seed))
    assert clip.shape == (3, 8, 32, 32) and clip.dtype == torch.float32
    # Frames differ from the first only by the brightness offset: same box, same flip
    # (up to one level of rounding in the uint8 resize; another box would differ by tens).
    pixels = clip * torch.tensor(STD).view(3, 1, 1, 1) + torch.tensor(MEAN).view(3, 1, 1, 1)
    diffs = pixels - pixels[:, :1]
    for k in range(8):
        assert torch.allclose(diffs[:, k], torch.full_like(diffs[:, k], 5 * k / 255), atol=1.01 / 255)
        assert abs(float(diffs[:, k].mean()) - 5 * k / 255) < 0.1 / 255


def test_crop_boxes_vary_and_stay_inside():
    boxes = {multi_scale_crop_box(60, 80, 32, (1.0, 0.875, 0.75, 0.66), 1, np.random.default_rng(s)) for s in range(50)}
    assert len(boxes) > 10
    for top, left, h, w in boxes:
        assert 0 <= top and top + h <= 60 and 0 <= left and left + w <= 80
        assert h in (60, 52, 45, 39) and w in (60, 52, 45, 39)


def test_normalisation_values():
    frames = np.full((2, 40, 40, 3), 255, np.uint8)
    clip = EvalClipTransform(32, MEAN, STD)(frames)[0]
    expected = (1 - torch.tensor(MEAN)) / torch.tensor(STD)
    assert torch.allclose(clip[:, 0, 0, 0], expected)


def test_eval_transform_is_a_deterministic_centre_crop():
    frames = moving_frames(h=48, w=96)
    transform = EvalClipTransform(32, MEAN, STD)
    a, b = transform(frames), transform(frames)
    assert torch.equal(a, b) and a.shape == (1, 3, 8, 32, 32)


def test_flip_happens_for_some_seeds_only():
    frames = moving_frames(t=1)
    transform = MultiScaleCropTransform(60, MEAN, STD, scales=(1.0,), flip=True)
    outputs = [transform(frames, np.random.default_rng(s)) for s in range(10)]
    flipped = [torch.allclose(o, outputs[0].flip(-1)) for o in outputs]
    assert any(flipped) and not all(flipped)


def test_finetune_augmentation_is_identical_on_every_frame():
    from video_mae.data.transforms import FinetuneClipTransform

    # All frames equal: after crop, flip, RandAugment and erasing they must still be equal.
    frame = np.random.default_rng(1).integers(0, 255, size=(60, 80, 3)).astype(np.uint8)
    frames = np.stack([frame] * 6)
    transform = FinetuneClipTransform(32, MEAN, STD, rand_augment="rand-m9-n4-mstd0.5-inc1", random_erasing=0.0)
    outputs = [transform(frames, np.random.default_rng(seed)) for seed in range(4)]
    for clip in outputs:
        assert clip.shape == (3, 6, 32, 32)
        assert torch.equal(clip, clip[:, :1].expand_as(clip))
    assert not torch.equal(outputs[0], outputs[1])  # different draws per clip
    # Same generator state, same clip: augmentations are reproducible.
    assert torch.equal(transform(frames, np.random.default_rng(0)), outputs[0])


def test_random_erasing_cuts_one_box_through_all_frames():
    from video_mae.data.transforms import FinetuneClipTransform

    frame = np.random.default_rng(1).integers(0, 255, size=(60, 80, 3)).astype(np.uint8)
    frames = np.stack([frame] * 6)
    for seed in range(5):
        plain = FinetuneClipTransform(32, MEAN, STD, rand_augment=None, random_erasing=0.0)
        erased = FinetuneClipTransform(32, MEAN, STD, rand_augment=None, random_erasing=1.0)
        a, b = plain(frames, np.random.default_rng(seed)), erased(frames, np.random.default_rng(seed))
        changed = (a != b).any(dim=0)  # [T, H, W]
        assert changed.any()
        assert torch.equal(changed, changed[:1].expand_as(changed))  # the same box in every frame


def test_finetune_augmentation_leaves_global_rngs_alone():
    import random

    from video_mae.data.transforms import FinetuneClipTransform

    random.seed(5)
    np.random.seed(5)
    expected = (random.random(), np.random.rand())
    random.seed(5)
    np.random.seed(5)
    FinetuneClipTransform(32, MEAN, STD)(moving_frames(), np.random.default_rng(0))
    assert (random.random(), np.random.rand()) == expected


def test_bad_rand_augment_policy_names_the_key():
    from video_mae.data.transforms import FinetuneClipTransform

    with pytest.raises(ValueError, match="augment.rand_augment"):
        FinetuneClipTransform(32, MEAN, STD, rand_augment="bogus-m9")


def test_random_resized_crop_boxes():
    from video_mae.data.transforms import random_resized_crop_box

    for seed in range(50):
        top, left, h, w = random_resized_crop_box(60, 80, (0.08, 1.0), (0.75, 4 / 3), np.random.default_rng(seed))
        assert 0 <= top and top + h <= 60 and 0 <= left and left + w <= 80
        assert 0.07 * 4800 <= h * w <= 4800


def test_three_crops_span_the_long_side():
    # A horizontal ramp: the left crop is darker than the centre, the centre than the right.
    ramp = np.tile(np.linspace(0, 255, 96).astype(np.uint8)[None, :, None], (48, 1, 3))
    views = EvalClipTransform(32, MEAN, STD, short_side=32, num_crops=3)(np.stack([ramp] * 2))
    assert views.shape == (3, 3, 2, 32, 32)
    means = [float(v.mean()) for v in views]
    assert means[0] < means[1] < means[2]
    centre = EvalClipTransform(32, MEAN, STD, short_side=32, num_crops=1)(np.stack([ramp] * 2))
    assert torch.allclose(centre[0], views[1])
