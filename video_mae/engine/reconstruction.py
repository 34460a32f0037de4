"""How well a masked autoencoder fills in hidden tubelets, against two predictors that know
nothing of shape or motion.

A pretraining loss alone does not say whether the model learned anything beyond colour: on
clips with a flat background, predicting each clip's mean colour already gets a low error.
So the error is reported beside two baselines computed on the same clips and masks:

* ``mean_colour_mse``: every hidden pixel gets the clip's mean visible colour;
* ``nearest_visible_mse``: every hidden tubelet is a copy of the visible tubelet nearest to
  it on the token grid (time slots, rows, columns; ties go to the lowest index).

All three are mean squared errors over the hidden tubelets' pixels in [0, 1]. With a
normalised-pixel target the predictions are standardised per tubelet; they are scored after
taking the true tubelet's mean and spread (as the reconstruction pictures show them), which
gives the model that much of the answer, and ``target`` says so.
"""

from __future__ import annotations

import torch

from ..masking import Mask
from ..models.mae import MaskedAutoencoder
from ..models.patchify import patchify


def _gather_tokens(patches: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """patches [B, N, P, C], ids [B, n] -> [B, n, P, C]."""
    return torch.gather(patches, 1, ids[..., None, None].expand(-1, -1, *patches.shape[2:]))


def nearest_visible(mask: Mask, grid: tuple[int, int, int]) -> torch.Tensor:
    """[B, n_masked]: for each hidden token, the position in ``mask.ids_keep`` of the
    visible token nearest to it on the token grid."""
    t, h, w = grid
    device = mask.ids_keep.device
    axes = torch.meshgrid(torch.arange(t, device=device), torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    coords = torch.stack(axes, dim=-1).reshape(-1, 3).float()
    hidden, visible = coords[mask.ids_mask], coords[mask.ids_keep]  # [B, n, 3], [B, v, 3]
    return torch.cdist(hidden, visible).argmin(dim=-1)


@torch.no_grad()
def reconstruction_errors(model: MaskedAutoencoder, clips: torch.Tensor, mask: Mask) -> dict[str, float | str | int]:
    """clips: normalised [B, C, T, H, W] on the model's device; ``mask`` for those clips.
    Returns the three errors (see the module notes), the number of clips and the target."""
    was_training = model.training
    model.eval()  # every hidden token is reconstructed in evaluation (no decoder masking)
    try:
        out = model(clips, mask=mask)
    finally:
        model.train(was_training)
    encoder = model.encoder
    pixels = (clips.float() * model.pixel_std + model.pixel_mean).clamp(0, 1)
    patches = patchify(pixels, encoder.tubelet_size, encoder.patch_size)  # [B, N, P, C]
    target = _gather_tokens(patches, mask.ids_mask)
    pred = out.pred.float().reshape(target.shape)
    if model.norm_pix_loss:
        mean = target.mean(dim=-2, keepdim=True)
        std = target.var(dim=-2, unbiased=True, keepdim=True).sqrt() + 1e-6
        pred = pred * std + mean
    pred = pred.clamp(0, 1)
    visible = _gather_tokens(patches, mask.ids_keep)
    mean_colour = visible.mean(dim=(1, 2), keepdim=True)
    copies = _gather_tokens(visible, nearest_visible(mask, encoder.grid))
    return {
        "hidden_mse": (pred - target).square().mean().item(),
        "mean_colour_mse": (mean_colour - target).square().mean().item(),
        "nearest_visible_mse": (copies - target).square().mean().item(),
        "clips": int(clips.shape[0]),
        "target": "normalised pixels, shown with the true tubelet statistics" if model.norm_pix_loss else "pixels",
    }
