"""The masked autoencoder: encoder on visible tokens, light decoder, pixel loss."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from timm.layers import trunc_normal_
from torch import nn

from ..constants import IMAGENET_MEAN, IMAGENET_STD  # noqa: F401  (re-exported)
from ..masking import Mask, Masking, RunningCellMasking
from .decoder import MAEDecoder
from .patchify import normalize_patches
from .pos_embed import sinusoid_table
from .vit import VisionTransformer3D


@dataclass
class MAEOutput:
    """loss: scalar mean squared error over the predicted (hidden) tokens only.
    pred: [B, n_pred, tubelet * patch**2 * C] predictions for the tokens ``ids_pred``.
    mask: the :class:`~video_mae.masking.Mask` that was used.
    ids_pred: [B, n_pred] sorted token indices that were reconstructed: ``mask.ids_mask``,
          or the subset a decoder masking picked (training only)."""

    loss: torch.Tensor
    pred: torch.Tensor
    mask: Mask
    ids_pred: torch.Tensor


class MaskedAutoencoder(nn.Module):
    """VideoMAE pretraining model.

    The encoder embeds and runs its blocks on the visible tubelets only. The decoder receives the visible tokens (projected to its width) plus
    one shared mask token per hidden position, each with the decoder's fixed
    positional table, and predicts the pixels of the hidden tubelets. With
    ``norm_pix_loss`` the target is each tubelet's pixels standardised per
    channel (VideoMAE's default); otherwise the raw pixels in [0, 1].

    The model takes clips normalised with ``pixel_mean`` / ``pixel_std`` (what
    the data transforms produce) and undoes that to build the targets.

    The decoder's MLP ratio follows the encoder's unless ``decoder_mlp_ratio`` is
    given (VideoMAE V2's ViT-g uses 48/11 in both); ``decoder_norm_eps`` sets the
    epsilon of the decoder's last norm alone (Hugging Face uses 1e-5 there).

    With ``decoder_masking`` (VideoMAE V2's running cell), training steps feed the
    decoder and the loss only the hidden tokens it selects, which makes the decoder
    cheaper; evaluation always reconstructs every hidden token.
    """

    def __init__(
        self,
        encoder: VisionTransformer3D,
        masking: Masking,
        decoder_dim: int = 384,
        decoder_depth: int = 4,
        decoder_num_heads: int = 6,
        norm_pix_loss: bool = True,
        pixel_mean: tuple[float, ...] = IMAGENET_MEAN,
        pixel_std: tuple[float, ...] = IMAGENET_STD,
        decoder_mlp_ratio: float | None = None,
        decoder_norm_eps: float | None = None,
        decoder_masking: RunningCellMasking | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.masking = masking
        self.decoder_masking = decoder_masking
        self.norm_pix_loss = norm_pix_loss
        in_chans = encoder.in_chans
        if len(pixel_mean) != in_chans or len(pixel_std) != in_chans:
            raise ValueError(f"pixel_mean and pixel_std need {in_chans} values each, got {pixel_mean} and {pixel_std}")
        self.encoder_to_decoder = nn.Linear(encoder.embed_dim, decoder_dim, bias=False)
        nn.init.xavier_uniform_(self.encoder_to_decoder.weight)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        trunc_normal_(self.mask_token, std=0.02)
        self.register_buffer("decoder_pos_embed", sinusoid_table(encoder.num_patches, decoder_dim)[None], persistent=False)
        self.decoder = MAEDecoder(
            embed_dim=decoder_dim,
            depth=decoder_depth,
            num_heads=decoder_num_heads,
            out_dim=encoder.tubelet_size * encoder.patch_size**2 * in_chans,
            mlp_ratio=decoder_mlp_ratio if decoder_mlp_ratio is not None else encoder.mlp_ratio,
            norm_eps=encoder.norm_eps,
            final_norm_eps=decoder_norm_eps,
            grad_checkpointing=encoder.grad_checkpointing,
        )
        shape = (1, in_chans, 1, 1, 1)
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(shape), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(shape), persistent=False)

    def partition_masks(self, global_batch: int, rows: list[int]) -> None:
        """Under data parallelism: draw each batch's masks for the whole global batch
        (``global_batch`` clips) and keep ``rows``, this rank's clips, so that the masks
        a clip gets do not depend on how many ranks share the batch."""
        self._mask_partition = (global_batch, torch.tensor(rows, dtype=torch.long))

    def make_mask(self, batch_size: int, device: torch.device, generator: torch.Generator | None = None) -> Mask:
        """The encoder's mask and, in training with decoder masking, the decoder's pick,
        both drawn for the whole global batch under :meth:`partition_masks`."""
        partition = getattr(self, "_mask_partition", None)
        if partition is not None and len(partition[1]) == batch_size:
            full = self.masking(partition[0], self.encoder.grid, device=device, generator=generator)
            return self.pick_decoded(full, generator).take(partition[1].to(device))
        mask = self.masking(batch_size, self.encoder.grid, device=device, generator=generator)
        return self.pick_decoded(mask, generator)

    def pick_decoded(self, mask: Mask, generator: torch.Generator | None = None) -> Mask:
        """``mask`` with ``ids_pred`` set by the decoder masking (training only)."""
        if self.decoder_masking is None or not self.training or mask.ids_pred is not None:
            return mask
        return replace(mask, ids_pred=self.decoder_masking.select(mask, self.encoder.grid, generator))

    def forward_decoder(self, latent: torch.Tensor, mask: Mask, ids_pred: torch.Tensor | None = None) -> torch.Tensor:
        """Predictions for the tokens ``ids_pred`` (default: every hidden token)."""
        if ids_pred is None:
            ids_pred = mask.ids_mask
        x_vis = self.encoder_to_decoder(latent)
        batch, _, dim = x_vis.shape
        pos = self.decoder_pos_embed.to(x_vis.dtype).expand(batch, -1, -1)
        pos_vis = torch.gather(pos, 1, mask.ids_keep.unsqueeze(-1).expand(-1, -1, dim))
        pos_pred = torch.gather(pos, 1, ids_pred.unsqueeze(-1).expand(-1, -1, dim))
        x = torch.cat([x_vis + pos_vis, self.mask_token.to(x_vis.dtype) + pos_pred], dim=1)
        return self.decoder(x, pos_pred.shape[1])

    def targets(self, video: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """[B, n, tubelet * patch**2 * C] targets of the tokens ``ids`` ([B, n]): the tubelets'
        un-normalised (0..1) pixels, standardised per tubelet and channel when
        ``norm_pix_loss`` (:func:`~video_mae.models.patchify.normalize_patches`), in
        :func:`~video_mae.models.patchify.patchify`'s (pixel, channel) order; float32
        whatever the autocast state.

        Computed for the tokens ``ids`` only, on the embedding's [B, n, C, pixels] layout,
        whose statistics reduce over contiguous memory (patchify's channel-last layout
        reduces over a stride of C): a ViT-S step's targets took 15 ms of its 186 ms
        before, on 2 CPU cores."""
        with torch.autocast(device_type=video.device.type, enabled=False):
            # The embedding's tubelets, (channel, pixel) order: [B, N, C, pixels].
            patches = self.encoder.patch_embed.tubelets(video.float()).unflatten(-1, (self.encoder.in_chans, -1))
            patches = torch.gather(patches, 1, ids[:, :, None, None].expand(-1, -1, *patches.shape[2:]))
            patches = patches * self.pixel_std.view(1, 1, -1, 1) + self.pixel_mean.view(1, 1, -1, 1)
            if self.norm_pix_loss:
                patches = normalize_patches(patches, dim=-1)
            return patches.transpose(-1, -2).flatten(2)

    def forward(
        self,
        video: torch.Tensor,
        mask: Mask | None = None,
        generator: torch.Generator | None = None,
    ) -> MAEOutput:
        """video: [B, C, T, H, W] normalised clips. Draws a mask (on the video's
        device, from ``generator``) unless one is given."""
        mask = self.make_mask(video.shape[0], video.device, generator) if mask is None else self.pick_decoded(mask, generator)
        # Evaluation reconstructs every hidden token, whatever was picked for training.
        ids_pred = mask.ids_pred if self.training and mask.ids_pred is not None else mask.ids_mask
        latent = self.encoder.forward_features(video, mask.ids_keep)
        pred = self.forward_decoder(latent, mask, ids_pred)
        loss = F.mse_loss(pred.float(), self.targets(video, ids_pred))
        return MAEOutput(loss=loss, pred=pred, mask=mask, ids_pred=ids_pred)
