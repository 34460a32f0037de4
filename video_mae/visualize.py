"""Reconstruction pictures: original, masked input and reconstruction of a clip."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .masking import Mask
from .models.mae import MaskedAutoencoder
from .models.patchify import patchify, unpatchify


@dataclass
class Reconstruction:
    """uint8 videos [T, H, W, 3]: the clip, what the encoder saw (masked tubelets
    greyed out) and the clip with its masked tubelets replaced by predictions."""

    original: np.ndarray
    masked: np.ndarray
    reconstruction: np.ndarray


def _to_uint8_video(pixels: torch.Tensor) -> np.ndarray:
    """[C, T, H, W] in 0..1 -> uint8 [T, H, W, C]."""
    return (pixels.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 3, 0).cpu().numpy()


@torch.no_grad()
def reconstruct(model: MaskedAutoencoder, clip: torch.Tensor, mask: Mask | None = None, seed: int = 0) -> Reconstruction:
    """clip: one normalised clip [C, T, H, W]. Without ``mask``, one is drawn from ``seed``.

    With a normalised-pixel target the predictions are standardised per tubelet;
    they are shown with the mean and spread of the true tubelet, as MAE papers
    do, so the picture shows structure, not absolute colour.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    video = clip.unsqueeze(0).to(device)
    if mask is None:
        generator = torch.Generator(device=device).manual_seed(seed)
        mask = model.make_mask(1, device, generator)
    out = model(video, mask=mask)
    encoder = model.encoder
    tubelet, patch = encoder.tubelet_size, encoder.patch_size
    pixels = (video.float() * model.pixel_std + model.pixel_mean).clamp(0, 1)
    patches = patchify(pixels, tubelet, patch)  # [1, N, P, C]
    pred = out.pred.float().reshape(1, -1, patches.shape[2], patches.shape[3])
    if model.norm_pix_loss:
        true = torch.gather(patches, 1, mask.ids_mask[..., None, None].expand(-1, -1, *patches.shape[2:]))
        mean = true.mean(dim=-2, keepdim=True)
        std = true.var(dim=-2, unbiased=True, keepdim=True).sqrt() + 1e-6
        pred = pred * std + mean
    index = mask.ids_mask[..., None, None].expand(-1, -1, *patches.shape[2:])
    recon_patches = patches.clone().scatter(1, index, pred)
    grey_patches = patches.clone().scatter(1, index, torch.full_like(pred, 0.5))
    grid = encoder.grid
    if was_training:
        model.train()
    return Reconstruction(
        original=_to_uint8_video(pixels[0]),
        masked=_to_uint8_video(unpatchify(grey_patches, grid, tubelet, patch)[0]),
        reconstruction=_to_uint8_video(unpatchify(recon_patches, grid, tubelet, patch)[0].clamp(0, 1)),
    )


def reconstruction_grid(recon: Reconstruction, num_frames: int = 8, gap: int = 2) -> np.ndarray:
    """uint8 image: rows original / masked / reconstruction, columns = up to
    ``num_frames`` evenly spaced frames, separated by ``gap`` white pixels."""
    total = recon.original.shape[0]
    picks = np.linspace(0, total - 1, min(num_frames, total)).round().astype(int)
    rows = []
    for video in (recon.original, recon.masked, recon.reconstruction):
        tiles = []
        for i in picks:
            tiles.append(video[i])
            tiles.append(np.full((video.shape[1], gap, 3), 255, np.uint8))
        rows.append(np.concatenate(tiles[:-1], axis=1))
        rows.append(np.full((gap, rows[-1].shape[1], 3), 255, np.uint8))
    return np.concatenate(rows[:-1], axis=0)


def side_by_side(recon: Reconstruction, gap: int = 2) -> np.ndarray:
    """uint8 video [T, H, 3W + 2 gap, 3]: original | masked | reconstruction per frame."""
    t, h = recon.original.shape[:2]
    spacer = np.full((t, h, gap, 3), 255, np.uint8)
    return np.concatenate([recon.original, spacer, recon.masked, spacer, recon.reconstruction], axis=2)


def save_png(image: np.ndarray, path: str | Path, scale: int = 1) -> None:
    from PIL import Image  # only to write files; the grids are NumPy

    picture = Image.fromarray(image)
    if scale > 1:
        picture = picture.resize((image.shape[1] * scale, image.shape[0] * scale), Image.NEAREST)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)


def save_gif(frames: np.ndarray, path: str | Path, fps: float = 8.0, scale: int = 1) -> None:
    from PIL import Image  # only to write files; the grids are NumPy

    pictures = [Image.fromarray(frame) for frame in frames]
    if scale > 1:
        pictures = [p.resize((p.width * scale, p.height * scale), Image.NEAREST) for p in pictures]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=round(1000 / fps), loop=0)
