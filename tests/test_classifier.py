import pytest
import torch

from video_mae.engine.optim import layer_decay_param_groups
from video_mae.masking import TubeMasking
from video_mae.models import MaskedAutoencoder, VisionTransformer3D
from video_mae.models.classifier import VideoClassifier
from video_mae.models.patch_embed import resize_tubelet_kernel
from video_mae.models.pos_embed import resize_pos_embed, sinusoid_table
from video_mae.models.pretrained import PretrainedMismatch, load_encoder_weights
from video_mae.models.probe import ProbeClassifier


def encoder(frames=8, size=32, tubelet=2, final_norm=True, grid=None, depth=2):
    return VisionTransformer3D(
        img_size=size, patch_size=8, num_frames=frames, tubelet_size=tubelet, embed_dim=32, depth=depth,
        num_heads=2, final_norm=final_norm, pos_embed_grid=grid,
    )  # fmt: skip


def pretrained_state(**kwargs):
    torch.manual_seed(0)
    mae = MaskedAutoencoder(encoder(**kwargs), TubeMasking(0.75), decoder_dim=16, decoder_depth=1, decoder_num_heads=2)
    return mae.state_dict()


def test_mean_pooling_classifier_loads_every_encoder_weight_and_reports_the_rest():
    state = pretrained_state()
    model = VideoClassifier(encoder(final_norm=False), num_classes=5)
    report = load_encoder_weights(model, state)
    assert report.missing == ["fc_norm.weight", "fc_norm.bias", "head.weight", "head.bias"]
    assert "encoder.norm.weight" in report.ignored and "mask_token" in report.ignored
    assert all(k.startswith(("decoder.", "encoder_to_decoder.", "mask_token", "encoder.norm.")) for k in report.ignored)
    assert torch.equal(model.encoder.blocks[1].attn.qkv.weight, state["encoder.blocks.1.attn.qkv.weight"])
    assert model(torch.randn(2, 3, 8, 32, 32)).shape == (2, 5)
    # The head starts small: logits near zero.
    assert model(torch.randn(2, 3, 8, 32, 32)).abs().max() < 0.1


def test_mismatched_checkpoints_are_refused_with_the_keys():
    state = pretrained_state()
    with pytest.raises(PretrainedMismatch, match="encoder.blocks.2"):
        load_encoder_weights(VideoClassifier(encoder(final_norm=False, depth=3), 5), state)
    with pytest.raises(PretrainedMismatch, match="unexpected keys: extra.weight"):
        load_encoder_weights(VideoClassifier(encoder(final_norm=False), 5), {**state, "extra.weight": torch.ones(1)})


def test_positional_table_adapts_in_time_and_space():
    # Pretrained on 16 frames at 112 px (grid 8 x 14 x 14), fine-tuned on 8 frames at 160 px (4 x 20 x 20).
    source, target = (8, 14, 14), (4, 20, 20)
    table = resize_pos_embed(sinusoid_table(8 * 14 * 14, 16), source, target)
    assert table.shape == (4 * 20 * 20, 16)
    volume = sinusoid_table(8 * 14 * 14, 16).T.reshape(16, 8, 14, 14)
    resized = table.T.reshape(16, 4, 20, 20)
    # Corners keep their codes' neighbourhood: the first token's code is a blend of the
    # first source tokens, in time as well as in space.
    assert torch.allclose(resized[:, 0, 0, 0], volume[:, :2, :1, :1].mean(dim=(1, 2, 3)), atol=0.05)
    # Time changed: the table differs from a space-only resize.
    space_only = torch.nn.functional.interpolate(volume[None], size=(8, 20, 20), mode="trilinear")[0]
    assert not torch.allclose(resized[:, 1], space_only[:, 1], atol=1e-3)
    vit = VisionTransformer3D(
        img_size=160, patch_size=8, num_frames=8, tubelet_size=2, embed_dim=16, depth=1, num_heads=2, pos_embed_grid=source
    )
    assert torch.allclose(vit.pos_embed[0], resize_pos_embed(sinusoid_table(8 * 14 * 14, 16), source, vit.grid))


def test_tubelet_change_keeps_static_responses():
    kernel = torch.randn(4, 3, 2, 8, 8)
    static = torch.randn(3, 8, 8)
    resized = resize_tubelet_kernel(kernel, 4)
    assert resized.shape == (4, 3, 4, 8, 8)
    response_old = (kernel * static[:, None]).sum(dim=(1, 2, 3, 4))
    response_new = (resized * static[:, None]).sum(dim=(1, 2, 3, 4))
    assert torch.allclose(response_old, response_new, atol=1e-4)
    # Loading a tubelet-2 checkpoint into a tubelet-4 classifier adapts that kernel.
    model = VideoClassifier(encoder(tubelet=4, final_norm=False, grid=(4, 4, 4)), 3)
    report = load_encoder_weights(model, pretrained_state())
    assert report.adapted == ["encoder.patch_embed.proj.weight (tubelet 2 -> 4)"]


def test_layer_decay_groups():
    model = VideoClassifier(encoder(final_norm=False, depth=3), 4)
    groups = layer_decay_param_groups(model, weight_decay=0.05, layer_decay=0.5)
    names = {id(p): n for n, p in model.named_parameters()}
    scale_of = {names[id(p)]: g["lr_scale"] for g in groups for p in g["params"]}
    decay_of = {names[id(p)]: g["weight_decay"] for g in groups for p in g["params"]}
    assert scale_of["head.weight"] == 1.0 and scale_of["fc_norm.weight"] == 1.0
    assert scale_of["encoder.blocks.2.mlp.fc1.weight"] == 0.5
    assert scale_of["encoder.blocks.0.attn.qkv.weight"] == 0.5**3
    assert scale_of["encoder.patch_embed.proj.weight"] == 0.5**4
    assert decay_of["encoder.blocks.0.attn.q_bias"] == 0.0 and decay_of["head.weight"] == 0.05
    assert len(scale_of) == len(list(model.parameters()))


@pytest.mark.parametrize("kind", ["linear", "attentive"])
def test_probe_trains_only_its_head(kind):
    model = ProbeClassifier(encoder(final_norm=True), num_classes=3, kind=kind, num_heads=4)
    load_encoder_weights(model, pretrained_state())
    frozen = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model.train()
    assert not model.encoder.training
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(model(torch.randn(4, 3, 8, 32, 32)), torch.tensor([0, 1, 2, 0]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert all(torch.equal(frozen[k], v) for k, v in model.encoder.state_dict().items())
    assert all(not p.requires_grad for p in model.encoder.parameters())
