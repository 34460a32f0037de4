import torch

from video_mae.engine.mixup import VideoMixup


def constant_clips(batch=4, frames=4, size=16):
    # Sample i is the constant i + 1 everywhere, so the mix can be read off the pixels.
    return torch.arange(1, batch + 1, dtype=torch.float32).view(batch, 1, 1, 1, 1).expand(batch, 3, frames, size, size).clone()


def test_cutmix_pastes_one_box_through_all_frames_and_channels():
    mixup = VideoMixup(num_classes=5, mixup_alpha=0.0, cutmix_alpha=1.0, label_smoothing=0.0, seed=3)
    for _ in range(5):
        clips = constant_clips()
        mixed, targets = mixup(clips, torch.tensor([0, 1, 2, 3]))
        pasted = mixed[0] != 1  # sample 0 receives pixels of sample 3 (the flipped batch)
        assert torch.equal(pasted, pasted[:1, :1].expand_as(pasted))
        area = pasted[0, 0].float().mean()
        assert torch.allclose(mixed[0][pasted], torch.tensor(4.0))
        # The soft target follows the pasted area (timm corrects lambda to the box).
        assert torch.allclose(targets[0], torch.tensor([1 - area, 0, 0, area, 0]), atol=1e-6)
        assert torch.allclose(targets.sum(1), torch.ones(4))


def test_mixup_blends_whole_clips_with_smoothed_targets():
    mixup = VideoMixup(num_classes=4, mixup_alpha=0.8, cutmix_alpha=0.0, label_smoothing=0.1, seed=0)
    mixed, targets = mixup(constant_clips(), torch.tensor([0, 1, 2, 3]))
    lam = (4 - mixed[0, 0, 0, 0, 0]) / 3  # sample 0 = lam * 1 + (1 - lam) * 4
    assert torch.allclose(mixed[0], mixed[0, 0, 0, 0, 0].expand_as(mixed[0]))
    off, on = 0.1 / 4, 1 - 0.1 + 0.1 / 4
    expected = torch.tensor([lam * on + (1 - lam) * off, off, off, lam * off + (1 - lam) * on])
    assert torch.allclose(targets[0], expected, atol=1e-5)


def test_mixing_is_reproducible_from_the_saved_state():
    a = VideoMixup(num_classes=3, seed=7)
    a(constant_clips(), torch.tensor([0, 1, 2, 0]))
    state = a.state_dict()
    first = a(constant_clips(), torch.tensor([0, 1, 2, 0]))
    b = VideoMixup(num_classes=3, seed=99)
    b.load_state_dict(state)
    second = b(constant_clips(), torch.tensor([0, 1, 2, 0]))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_odd_batches_are_refused_with_the_reason():
    import pytest

    with pytest.raises(ValueError, match="even number of clips"):
        VideoMixup(num_classes=3)(constant_clips(batch=3), torch.tensor([0, 1, 2]))
