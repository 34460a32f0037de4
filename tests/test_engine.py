import math

import pytest
import torch

from video_mae.engine.device import cpu_has_bf16, make_grad_scaler, resolve_device, resolve_precision
from video_mae.engine.optim import OptimSettings, build_adamw, weight_decay_param_groups
from video_mae.engine.schedule import WarmupCosineSchedule
from video_mae.masking import TubeMasking
from video_mae.models import MaskedAutoencoder, VisionTransformer3D


def test_no_weight_decay_on_norms_biases_and_tokens():
    encoder = VisionTransformer3D(
        img_size=32, patch_size=8, num_frames=4, tubelet_size=2, embed_dim=16, depth=1, num_heads=2, layer_scale_init=0.1
    )
    model = MaskedAutoencoder(encoder, TubeMasking(0.5), decoder_dim=8, decoder_depth=1, decoder_num_heads=2)
    decay, no_decay = weight_decay_param_groups(model, 0.05)
    names = {id(p): n for n, p in model.named_parameters()}
    no_decay_names = {names[id(p)] for p in no_decay["params"]}
    decay_names = {names[id(p)] for p in decay["params"]}
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert "mask_token" in no_decay_names
    assert {"encoder.blocks.0.attn.q_bias", "encoder.blocks.0.attn.v_bias", "encoder.blocks.0.norm1.weight",
            "encoder.blocks.0.gamma_1", "encoder.norm.bias", "decoder.head.bias"} <= no_decay_names  # fmt: skip
    assert {"encoder.patch_embed.proj.weight", "encoder.blocks.0.attn.qkv.weight", "encoder_to_decoder.weight"} <= decay_names
    assert len(decay_names) + len(no_decay_names) == len(list(model.parameters()))
    optimizer = build_adamw(model, OptimSettings(), lr=1e-3, device=torch.device("cpu"))
    assert optimizer.defaults["betas"] == (0.9, 0.95)


def test_lr_scales_with_the_global_batch():
    assert OptimSettings(base_lr=1.5e-4, min_lr=1e-5).scaled_lr(2048) == pytest.approx((1.2e-3, 8e-5))


def test_warmup_then_cosine():
    schedule = WarmupCosineSchedule(peak_lr=1.0, final_lr=0.1, warmup_steps=10, total_steps=110)
    assert schedule(0) == pytest.approx(0.1) and schedule(9) == pytest.approx(1.0)
    assert schedule(10) == pytest.approx(1.0)
    assert schedule(60) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 0.5)))
    assert schedule(110) == pytest.approx(0.1)
    values = [schedule(s) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:]))


@pytest.mark.parametrize(
    "kwargs,key",
    [
        ({"base_lr": 0.0}, "optim.base_lr"),
        ({"min_lr": 1.0}, "optim.min_lr"),
        ({"betas": (0.9, 1.2)}, "optim.betas"),
        ({"clip_grad": -1.0}, "optim.clip_grad"),
    ],
)
def test_invalid_optim_settings_name_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        OptimSettings(**kwargs)


def test_device_and_precision():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    # The demo's width stays fp32 on every CPU; a ViT-S width follows the CPU's bf16 support.
    assert resolve_precision("auto", torch.device("cpu"), 128) == "fp32"
    assert resolve_precision("auto", torch.device("cpu"), 384) == ("bf16" if cpu_has_bf16() else "fp32")
    assert resolve_precision("fp32", torch.device("cpu"), 768) == "fp32"
    assert make_grad_scaler(torch.device("cpu"), "bf16") is None
    assert make_grad_scaler(torch.device("cpu"), "fp16") is not None
    with pytest.raises(ValueError, match="train.precision"):
        resolve_precision("fp8", torch.device("cpu"))
    with pytest.raises(ValueError, match="train.device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


@pytest.mark.parametrize("native", [False, True])
def test_bf16_on_a_cpu_without_native_bf16_warns(monkeypatch, caplog, native):
    # The capability probe is replaced so that both branches run on any CPU.
    monkeypatch.setattr("video_mae.engine.device.cpu_has_bf16", lambda: native)
    with caplog.at_level("WARNING", logger="video_mae.engine.device"):
        assert resolve_precision("bf16", torch.device("cpu"), 384) == "bf16"
        assert resolve_precision("fp32", torch.device("cpu"), 384) == "fp32"
        assert resolve_precision("auto", torch.device("cpu"), 384) == ("bf16" if native else "fp32")
    warned = [r.getMessage() for r in caplog.records if "without native bf16" in r.getMessage()]
    assert len(warned) == (0 if native else 1)
    if warned:
        assert "precision=auto" in warned[0]


def test_cpu_adamw_is_fused_and_skips_non_finite_steps_on_the_device():
    # The fused kernel is the CPU default (torch >= 2.4); a non-finite loss must leave the
    # weights as they were through its found_inf path, and a finite one must move them.
    from video_mae.distributed import DistContext
    from video_mae.engine.optim import fused_adamw_default
    from video_mae.engine.optimizer_step import GuardedOptimizerStep

    model = torch.nn.Linear(4, 3)
    optimizer = build_adamw(model, OptimSettings(), 1e-2, torch.device("cpu"))
    fused = fused_adamw_default(torch.device("cpu"))
    assert fused == (torch.torch_version.TorchVersion(torch.__version__) >= (2, 4))
    assert all(group["fused"] == fused for group in optimizer.param_groups)
    step = GuardedOptimizerStep(optimizer, None, None, DistContext())
    assert step.sync_free == fused
    before = [p.detach().clone() for p in model.parameters()]
    loss = model(torch.randn(2, 4)).sum() * float("nan")
    loss.backward()
    finite, _ = step(loss.detach())
    assert not bool(finite)
    assert all(torch.equal(b, p) for b, p in zip(before, model.parameters()))
    loss = model(torch.randn(2, 4)).sum()
    loss.backward()
    finite, _ = step(loss.detach())
    assert bool(finite)
    assert not any(torch.equal(b, p) for b, p in zip(before, model.parameters()))
