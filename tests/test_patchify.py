import pytest
import torch

from video_mae.models.patchify import normalize_patches, patchify, unpatchify


@pytest.mark.parametrize("tubelet,patch", [(1, 4), (2, 8), (4, 4), (2, 16)])
def test_round_trip(tubelet, patch):
    video = torch.randn(2, 3, 8, 32, 48)
    patches = patchify(video, tubelet, patch)
    grid = (8 // tubelet, 32 // patch, 48 // patch)
    assert patches.shape == (2, grid[0] * grid[1] * grid[2], tubelet * patch * patch, 3)
    assert torch.equal(unpatchify(patches, grid, tubelet, patch), video)
    assert torch.equal(unpatchify(patches.flatten(2), grid, tubelet, patch), video)


def test_layout_is_time_major_tokens_and_frame_row_column_channel_pixels():
    # Each pixel value encodes its (c, t, y, x) position.
    c, t, y, x = torch.meshgrid(torch.arange(3), torch.arange(4), torch.arange(8), torch.arange(8), indexing="ij")
    video = (c * 1000 + t * 100 + y * 10 + x).float()[None]
    patches = patchify(video, tubelet_size=2, patch_size=4)  # grid (2, 2, 2)
    # Token 5 = slot 1, row 0, column 1; its pixel 1 = frame 0, row 0, column 1; channel 2.
    assert patches[0, 5, 1, 2] == 2 * 1000 + 2 * 100 + 0 * 10 + 5
    # Pixel 16 of a token = second frame of the tubelet.
    assert patches[0, 0, 16, 0] == 100


def test_normalised_patches_have_zero_mean_unit_variance_per_channel():
    patches = torch.rand(2, 5, 32, 3) * 4 + 1
    normed = normalize_patches(patches)
    assert torch.allclose(normed.mean(dim=-2), torch.zeros(2, 5, 3), atol=1e-5)
    assert torch.allclose(normed.var(dim=-2, unbiased=True), torch.ones(2, 5, 3), atol=1e-3)
