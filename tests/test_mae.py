import pytest
import torch
import torch.nn.functional as F

from video_mae.masking import RandomMasking, TubeMasking
from video_mae.models import MaskedAutoencoder, VisionTransformer3D
from video_mae.models.patchify import normalize_patches, patchify


def tiny_mae(tubelet=2, patch=8, frames=8, size=32, norm_pix=True, masking=None, checkpointing=False):
    torch.manual_seed(0)
    encoder = VisionTransformer3D(
        img_size=size, patch_size=patch, num_frames=frames, tubelet_size=tubelet,
        embed_dim=32, depth=2, num_heads=2, grad_checkpointing=checkpointing,
    )  # fmt: skip
    return MaskedAutoencoder(
        encoder, masking or TubeMasking(0.75), decoder_dim=24, decoder_depth=1, decoder_num_heads=2, norm_pix_loss=norm_pix
    )


def test_prediction_covers_exactly_the_masked_tokens():
    model = tiny_mae()
    video = torch.randn(3, 3, 8, 32, 32)
    out = model(video, generator=torch.Generator().manual_seed(0))
    n_masked = int(out.mask.mask[0].sum())
    assert out.pred.shape == (3, n_masked, 2 * 8 * 8 * 3)
    assert out.mask.ids_mask.shape == (3, n_masked)


@pytest.mark.parametrize("norm_pix", [True, False])
def test_loss_is_mse_over_masked_tokens_only(norm_pix):
    model = tiny_mae(norm_pix=norm_pix)
    video = torch.randn(2, 3, 8, 32, 32)
    mask = model.make_mask(2, torch.device("cpu"), torch.Generator().manual_seed(3))
    out = model(video, mask=mask)
    pixels = video * model.pixel_std + model.pixel_mean
    patches = patchify(pixels, 2, 8)
    if norm_pix:
        patches = normalize_patches(patches)
    masked_targets = patches.flatten(2)[mask.mask].reshape(2, -1, 2 * 8 * 8 * 3)
    assert torch.allclose(out.loss, F.mse_loss(out.pred, masked_targets), atol=1e-6)


def test_visible_pixels_never_enter_the_loss_target_and_masked_pixels_never_enter_the_encoder():
    model = tiny_mae().eval()
    video = torch.randn(1, 3, 8, 32, 32)
    mask = model.make_mask(1, torch.device("cpu"), torch.Generator().manual_seed(5))
    token_of_pixel = torch.arange(model.encoder.num_patches).reshape(1, 4, 1, 4, 1, 4, 1)
    token_of_pixel = token_of_pixel.expand(1, 4, 2, 4, 8, 4, 8).reshape(1, 1, 8, 32, 32)
    masked_pixels = mask.mask[0][token_of_pixel].expand_as(video)

    noise = torch.randn_like(video) * 3
    only_masked = torch.where(masked_pixels, video + noise, video)
    only_visible = torch.where(masked_pixels, video, video + noise)
    base = model(video, mask=mask)
    # Changing hidden pixels changes the targets, not what the encoder saw.
    with torch.no_grad():
        latent = model.encoder(video, mask.ids_keep)
        assert torch.equal(latent, model.encoder(only_masked, mask.ids_keep))
    assert torch.equal(model(only_masked, mask=mask).pred, base.pred)
    assert not torch.allclose(model(only_masked, mask=mask).loss, base.loss)
    # Changing visible pixels changes the predictions, not the targets.
    assert torch.equal(model.targets(only_visible, mask.ids_mask), model.targets(video, mask.ids_mask))
    assert not torch.allclose(model(only_visible, mask=mask).pred, base.pred)


@pytest.mark.parametrize("masking", [TubeMasking(0.9), RandomMasking(0.9)])
def test_tubelet_4_trains(masking):
    model = tiny_mae(tubelet=4, patch=8, frames=8, size=32, masking=masking)
    assert model.encoder.grid == (2, 4, 4)
    video = torch.randn(2, 3, 8, 32, 32)
    out = model(video, generator=torch.Generator().manual_seed(0))
    assert out.pred.shape[-1] == 4 * 8 * 8 * 3
    out.loss.backward()
    assert model.encoder.patch_embed.proj.weight.grad.abs().sum() > 0


def test_activation_checkpointing_gives_the_same_gradients():
    video = torch.randn(2, 3, 8, 32, 32)
    grads = []
    for checkpointing in (False, True):
        model = tiny_mae(checkpointing=checkpointing)
        model(video, generator=torch.Generator().manual_seed(0)).loss.backward()
        grads.append(model.encoder.blocks[0].attn.qkv.weight.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_wrong_clip_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"expected clips of shape \[B, C, T, H, W\] = \[B, 3, 8, 32, 32\]"):
        tiny_mae()(torch.randn(1, 3, 16, 32, 32))


def test_patch_sizes_must_divide():
    with pytest.raises(ValueError, match="not a multiple of tubelet_size"):
        VisionTransformer3D(img_size=32, patch_size=8, num_frames=6, tubelet_size=4)
    with pytest.raises(ValueError, match="not a multiple of patch_size"):
        VisionTransformer3D(img_size=30, patch_size=8, num_frames=8, tubelet_size=2)


def test_bf16_autocast_forward_and_fp32_loss():
    model = tiny_mae()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(2, 3, 8, 32, 32), generator=torch.Generator().manual_seed(0))
    assert out.loss.dtype == torch.float32 and torch.isfinite(out.loss)


def test_under_bf16_autocast_the_residual_stream_is_bf16_with_all_tokens_and_with_the_kept_ones():
    # An fp32 stream (the input's dtype) doubles the memory traffic of every residual add.
    model = tiny_mae()
    seen = []
    model.encoder.blocks[0].register_forward_pre_hook(lambda module, args: seen.append(args[0].dtype))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        model.encoder.forward_features(torch.randn(2, 3, 8, 32, 32))
        model(torch.randn(2, 3, 8, 32, 32), generator=torch.Generator().manual_seed(0))
    assert seen == [torch.bfloat16, torch.bfloat16]


@pytest.mark.parametrize("tubelet,patch", [(2, 8), (4, 16), (1, 8)])
def test_gathering_tubelets_before_the_embedding_equals_embedding_everything(tubelet, patch):
    from video_mae.models import VisionTransformer3D

    torch.manual_seed(0)
    encoder = VisionTransformer3D(img_size=32, patch_size=patch, num_frames=8, tubelet_size=tubelet, embed_dim=24, depth=1, num_heads=2)
    video = torch.randn(3, 3, 8, 32, 32)
    mask = RandomMasking(0.75)(3, encoder.grid, generator=torch.Generator().manual_seed(1))
    everything = encoder.patch_embed(video)
    gathered = torch.gather(everything, 1, mask.ids_keep.unsqueeze(-1).expand(-1, -1, 24))
    assert torch.allclose(encoder.patch_embed.forward_visible(video, mask.ids_keep), gathered, atol=1e-5)
    # Both are the strided convolution the weights come from (VideoMAE's Conv3d).
    convolved = encoder.patch_embed.proj(video).flatten(2).transpose(1, 2)
    assert torch.allclose(everything, convolved, atol=1e-5)
