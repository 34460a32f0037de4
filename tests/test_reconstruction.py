"""Reconstruction quality against the mean-colour and nearest-visible-tubelet baselines."""

import torch

from video_mae.engine.reconstruction import nearest_visible, reconstruction_errors
from video_mae.masking import Mask, TubeMasking
from video_mae.models.mae import MaskedAutoencoder
from video_mae.models.vit import VisionTransformer3D

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def tiny_mae(norm_pix_loss: bool = False) -> MaskedAutoencoder:
    encoder = VisionTransformer3D(img_size=16, patch_size=8, num_frames=4, tubelet_size=2, embed_dim=16, depth=1, num_heads=2)
    return MaskedAutoencoder(encoder, TubeMasking(0.5), decoder_dim=16, decoder_depth=1, decoder_num_heads=2,
                             norm_pix_loss=norm_pix_loss, pixel_mean=MEAN, pixel_std=STD)  # fmt: skip


def test_nearest_visible_is_the_closest_token_on_the_grid():
    # Grid (2 slots, 1 row, 3 columns): tokens 0 1 2 / 3 4 5. Visible: 0 and 5.
    mask = Mask.from_split(torch.tensor([[1, 2, 3, 4]]), torch.tensor([[0, 5]]), 6)
    assert nearest_visible(mask, (2, 1, 3)).tolist() == [[0, 1, 0, 1]]  # 1 -> 0, 2 -> 5, 3 -> 0, 4 -> 5


def test_baselines_are_scored_on_the_hidden_pixels():
    # Left half of every frame black, right half white (in 0..1), 2x2 patches of 8 px.
    pixels = torch.zeros(1, 3, 4, 16, 16)
    pixels[..., 8:] = 1.0
    clip = (pixels - 0.5) / 0.25
    # Hide the right column's tokens of both slots and the bottom-left: visible = top-left (0 and 4).
    mask = Mask.from_split(torch.tensor([[1, 2, 3, 5, 6, 7]]), torch.tensor([[0, 4]]), 8)
    scores = reconstruction_errors(tiny_mae(), clip, mask)
    # Visible pixels are all black: the mean colour and the copies are black; hidden pixels are
    # white in 4 of the 6 hidden tokens (the right column), black in 2.
    assert abs(scores["mean_colour_mse"] - 4 / 6) < 1e-6
    assert abs(scores["nearest_visible_mse"] - 4 / 6) < 1e-6
    assert 0 <= scores["hidden_mse"] <= 1 and scores["clips"] == 1 and scores["target"] == "pixels"


def test_scoring_leaves_the_model_in_training_mode():
    model = tiny_mae(norm_pix_loss=True).train()
    clip = torch.randn(2, 3, 4, 16, 16)
    mask = model.masking(2, model.encoder.grid, generator=torch.Generator().manual_seed(0))
    scores = reconstruction_errors(model, clip, mask)
    assert model.training and scores["target"].startswith("normalised")
