"""Checkpoint interop against transformers' own VideoMAE (randomly initialised models)."""

from __future__ import annotations

import argparse
import logging
import os
import pickle
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")

from video_mae.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from video_mae.cli import convert as convert_cli  # noqa: E402
from video_mae.convert import ConversionError, UnsafeCheckpoint, convert_checkpoint, export_huggingface, model_from_checkpoint  # noqa: E402
from video_mae.convert.hf import hf_to_ours, ours_to_hf, read_hf_dir  # noqa: E402
from video_mae.convert.safe_load import load_foreign_checkpoint  # noqa: E402
from video_mae.masking import TubeMasking  # noqa: E402

TOL = 1e-4
# (name, HF config overrides): a tiny model, and ViT-S widths (384 wide, 6 heads) with the
# released decoder (192 wide, 3 heads); depth cut to 2 blocks to keep the suite fast.
SIZES = {
    "tiny": dict(hidden_size=64, num_attention_heads=4, intermediate_size=256, num_hidden_layers=2,
                 decoder_hidden_size=32, decoder_num_attention_heads=2, decoder_intermediate_size=128,
                 decoder_num_hidden_layers=2, image_size=32, patch_size=8, num_frames=4, tubelet_size=2),
    "vit_s": dict(hidden_size=384, num_attention_heads=6, intermediate_size=1536, num_hidden_layers=2,
                  decoder_hidden_size=192, decoder_num_attention_heads=3, decoder_intermediate_size=768,
                  decoder_num_hidden_layers=2, image_size=32, patch_size=16, num_frames=8, tubelet_size=4),
}  # fmt: skip


def hf_config(size: str, **extra) -> transformers.VideoMAEConfig:
    return transformers.VideoMAEConfig(**SIZES[size], **extra)


def save_hf(model, folder: Path) -> Path:
    model.save_pretrained(folder)
    return folder


def clips(config, batch=2, seed=0):
    generator = torch.Generator().manual_seed(seed)
    size = config.image_size
    return torch.randn(batch, config.num_frames, 3, size, size, generator=generator)  # HF layout [B, T, C, H, W]


def grid(config):
    side = config.image_size // config.patch_size
    return (config.num_frames // config.tubelet_size, side, side)


@pytest.mark.parametrize("size", ["tiny", "vit_s"])
@pytest.mark.parametrize("mean_pooling", [False, True])
def test_pretraining_model_matches_transformers(size, mean_pooling, tmp_path):
    torch.manual_seed(0)
    config = hf_config(size, use_mean_pooling=mean_pooling, norm_pix_loss=True)
    hf = transformers.VideoMAEForPreTraining(config).eval()
    checkpoint = convert_checkpoint(save_hf(hf, tmp_path / "hf"))
    ours = model_from_checkpoint(checkpoint).eval()
    ours.load_state_dict(checkpoint["model"])
    pixels = clips(config)
    mask = TubeMasking(0.75)(2, grid(config), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = hf(pixels, bool_masked_pos=mask.mask)
        hidden = hf.videomae(pixels, bool_masked_pos=mask.mask).last_hidden_state
        got = ours(pixels.permute(0, 2, 1, 3, 4), mask=mask)
        got_hidden = ours.encoder.forward_features(pixels.permute(0, 2, 1, 3, 4), mask.ids_keep)
    assert (got.loss - expected.loss).abs().item() <= TOL
    assert (got.pred - expected.logits).abs().max().item() <= TOL
    assert (got_hidden - hidden).abs().max().item() <= TOL


@pytest.mark.parametrize("size", ["tiny", "vit_s"])
@pytest.mark.parametrize("mean_pooling", [True, False])
def test_classification_model_matches_transformers(size, mean_pooling, tmp_path):
    torch.manual_seed(1)
    config = hf_config(size, use_mean_pooling=mean_pooling, num_labels=7)
    hf = transformers.VideoMAEForVideoClassification(config).eval()
    checkpoint = convert_checkpoint(save_hf(hf, tmp_path / "hf"))
    assert checkpoint["extras"]["classifier"]["num_classes"] == 7
    ours = model_from_checkpoint(checkpoint).eval()
    ours.load_state_dict(checkpoint["model"])
    pixels = clips(config)
    with torch.no_grad():
        logits = hf(pixels).logits
        hidden = hf.videomae(pixels).last_hidden_state
        got = ours(pixels.permute(0, 2, 1, 3, 4))
        got_hidden = ours.encoder.forward_features(pixels.permute(0, 2, 1, 3, 4))
    assert (got - logits).abs().max().item() <= TOL
    assert (got_hidden - hidden).abs().max().item() <= TOL


def test_encoder_only_model_converts(tmp_path):
    config = hf_config("tiny", use_mean_pooling=False)
    checkpoint = convert_checkpoint(save_hf(transformers.VideoMAEModel(config), tmp_path / "hf"))
    assert checkpoint["converted_from"]["architecture"] == "encoder"
    assert set(checkpoint["model"]) == set(model_from_checkpoint(checkpoint).state_dict())


@pytest.mark.parametrize("kind", ["pretraining", "classification"])
def test_round_trip_ours_hf_ours_is_bit_identical_and_loads_without_warnings(kind, tmp_path, caplog):
    torch.manual_seed(2)
    config = hf_config("tiny", use_mean_pooling=kind == "classification", num_labels=5)
    model_class = transformers.VideoMAEForPreTraining if kind == "pretraining" else transformers.VideoMAEForVideoClassification
    ours = convert_checkpoint(save_hf(model_class(config), tmp_path / "hf"))
    save_checkpoint(ours, tmp_path / "ours.pt")
    exported = export_huggingface(tmp_path / "ours.pt", tmp_path / "exported")
    back = hf_to_ours(*read_hf_dir(exported))
    assert back["model"].keys() == ours["model"].keys()
    assert all(torch.equal(back["model"][k], ours["model"][k]) for k in ours["model"])
    with caplog.at_level(logging.WARNING):
        loaded, info = model_class.from_pretrained(exported, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert not [r for r in caplog.records if "were not used" in r.getMessage() or "newly initialized" in r.getMessage()]


def test_our_trained_checkpoint_exports_and_matches(tmp_path):
    """A model of ours (official eps of 1e-6 in the encoder) exported to transformers."""
    from video_mae.models import MaskedAutoencoder, VisionTransformer3D

    torch.manual_seed(3)
    encoder = VisionTransformer3D(img_size=32, patch_size=8, num_frames=4, tubelet_size=2, embed_dim=48, depth=2, num_heads=3)
    mae = MaskedAutoencoder(encoder, TubeMasking(0.5), decoder_dim=24, decoder_depth=1, decoder_num_heads=2, decoder_norm_eps=1e-5)
    enc_cfg = {
        "img_size": 32,
        "patch_size": 8,
        "num_frames": 4,
        "tubelet_size": 2,
        "embed_dim": 48,
        "depth": 2,
        "num_heads": 3,
        "norm_eps": 1e-6,
    }
    model_cfg = {"encoder": enc_cfg, "decoder_dim": 24, "decoder_depth": 1, "decoder_num_heads": 2, "norm_pix_loss": True}
    checkpoint = {"model": mae.state_dict(), "config": {"model": model_cfg}}
    folder = export_huggingface(checkpoint, tmp_path / "hf")
    hf = transformers.VideoMAEForPreTraining.from_pretrained(folder).eval()
    pixels = torch.randn(2, 4, 3, 32, 32)
    mask = TubeMasking(0.5)(2, (2, 4, 4), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (mae.eval()(pixels.permute(0, 2, 1, 3, 4), mask=mask).pred - hf(pixels, bool_masked_pos=mask.mask).logits).abs().max() <= TOL


def official_state_from_hf(hf_state: dict, prefix: str) -> dict:
    """The official VideoMAE names, written here by hand from transformers' names
    (``prefix``: "encoder." for pretraining files, "" for fine-tuned ones)."""
    block_names = {
        "attention.output.dense": "attn.proj", "layernorm_before": "norm1", "layernorm_after": "norm2",
        "intermediate.dense": "mlp.fc1", "output.dense": "mlp.fc2",
    }  # fmt: skip
    top_names = {
        "embeddings.patch_embeddings.projection": prefix + "patch_embed.proj", "layernorm": prefix + "norm",
        "classifier": "head", "fc_norm": "fc_norm", "decoder.norm": "decoder.norm", "decoder.head": "decoder.head",
    }  # fmt: skip
    out, qkv = {}, {}
    for key, value in hf_state.items():
        key = key.removeprefix("videomae.")
        root = None
        if key.startswith("encoder.layer."):
            root, rest = prefix + "blocks.", key[len("encoder.layer.") :]
        elif key.startswith("decoder.decoder_layers."):
            root, rest = "decoder.blocks.", key[len("decoder.decoder_layers.") :]
        if root is None:
            module, part = key.rsplit(".", 1) if "." in key else (key, None)
            out[f"{top_names.get(module, module)}.{part}" if part else key] = value
            continue
        i, rest = rest.split(".", 1)
        if rest.startswith("attention.attention."):
            leaf = rest[len("attention.attention.") :]
            if leaf.endswith(".weight"):
                qkv.setdefault(f"{root}{i}.attn.qkv.weight", {})[leaf.split(".")[0]] = value
            else:  # query.bias / q_bias, value.bias / v_bias
                out[f"{root}{i}.attn.{'q_bias' if leaf.startswith('q') else 'v_bias'}"] = value
            continue
        module, part = rest.rsplit(".", 1)
        out[f"{root}{i}.{block_names[module]}.{part}"] = value
    for key, parts in qkv.items():  # fused, as the official code stores it
        out[key] = torch.cat([parts["query"], parts["key"], parts["value"]])
    return out


def tiny_preset():
    size = SIZES["tiny"]
    return {
        "encoder": {"embed_dim": size["hidden_size"], "depth": size["num_hidden_layers"], "num_heads": size["num_attention_heads"],
                    "tubelet_size": size["tubelet_size"], "patch_size": size["patch_size"], "mlp_ratio": 4.0, "norm_eps": 1e-12},
        "decoder_dim": size["decoder_hidden_size"], "decoder_num_heads": size["decoder_num_attention_heads"], "norm_pix_loss": True,
    }  # fmt: skip


@pytest.mark.parametrize("wrapper", ["model", "module", "backbone"])
def test_official_finetuned_pth_with_an_argparse_namespace_converts_and_matches(wrapper, tmp_path):
    torch.manual_seed(4)
    config = hf_config("tiny", use_mean_pooling=True, num_labels=6)
    hf = transformers.VideoMAEForVideoClassification(config).eval()
    state = official_state_from_hf(hf.state_dict(), prefix="")
    args = argparse.Namespace(model="vit_base_patch16_224", nb_classes=6, lr=5e-4)
    if wrapper == "backbone":
        payload = {"model": {f"backbone.{k}": v for k, v in state.items()}, "args": args, "epoch": 74}
    else:
        payload = {wrapper: state, "args": args, "epoch": 74}
    torch.save(payload, tmp_path / "official.pth")
    assert convert_cli(["import", str(tmp_path / "official.pth"), "--out", str(tmp_path / "ours.pt"), "--model", "vit_b"]) == 2
    checkpoint = convert_checkpoint(tmp_path / "official.pth", tiny_preset(), num_frames=config.num_frames, img_size=config.image_size)
    # fc_norm: the official code uses its norm epsilon; transformers hard-codes 1e-5.
    checkpoint["config"]["head"]["fc_norm_eps"] = 1e-5
    ours = model_from_checkpoint(checkpoint).eval()
    ours.load_state_dict(checkpoint["model"])
    pixels = clips(config)
    with torch.no_grad():
        assert (ours(pixels.permute(0, 2, 1, 3, 4)) - hf(pixels).logits).abs().max() <= TOL


def test_official_pretraining_pth_converts_and_matches(tmp_path):
    torch.manual_seed(5)
    config = hf_config("tiny", use_mean_pooling=False, norm_pix_loss=True)
    hf = transformers.VideoMAEForPreTraining(config).eval()
    state = official_state_from_hf(hf.state_dict(), prefix="encoder.")
    torch.save({"model": state, "args": argparse.Namespace(mask_ratio=0.9), "epoch": 799}, tmp_path / "pretrain.pth")
    checkpoint = convert_checkpoint(tmp_path / "pretrain.pth", tiny_preset(), num_frames=config.num_frames, img_size=config.image_size)
    checkpoint["config"]["model"]["decoder_norm_eps"] = 1e-5  # transformers' hard-coded decoder norm
    ours = model_from_checkpoint(checkpoint).eval()
    ours.load_state_dict(checkpoint["model"])
    pixels = clips(config)
    mask = TubeMasking(0.75)(2, grid(config), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = hf(pixels, bool_masked_pos=mask.mask)
        got = ours(pixels.permute(0, 2, 1, 3, 4), mask=mask)
    assert (got.loss - expected.loss).abs() <= TOL and (got.pred - expected.logits).abs().max() <= TOL


def test_leftover_and_mismatched_weights_are_errors_that_list_them(tmp_path):
    hf = transformers.VideoMAEForVideoClassification(hf_config("tiny", num_labels=3))
    config, state = hf.config.to_dict(), dict(hf.state_dict())
    state["extra.weight"] = torch.ones(2)
    with pytest.raises(ConversionError, match="1 weights were not used: extra.weight"):
        hf_to_ours(config, state)
    official = official_state_from_hf(hf.state_dict(), prefix="")
    torch.save({"model": official}, tmp_path / "o.pth")
    preset = tiny_preset()
    preset["encoder"]["depth"] = 3
    with pytest.raises(ConversionError, match="depth: file 2 vs preset 3"):
        convert_checkpoint(tmp_path / "o.pth", preset, num_frames=4, img_size=32)
    official["blocks.0.extra"] = torch.ones(1)
    torch.save({"model": official}, tmp_path / "o2.pth")
    with pytest.raises(ConversionError, match="unexpected keys: encoder.blocks.0.extra"):
        convert_checkpoint(tmp_path / "o2.pth", tiny_preset(), num_frames=4, img_size=32)


class Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


MARKER = Path("/nonexistent")


def test_a_pickle_that_would_run_code_is_refused(tmp_path, monkeypatch):
    global MARKER
    MARKER = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"model": {"w": torch.ones(1)}, "args": Exploit()}, path)
    with pytest.raises(UnsafeCheckpoint, match="posix.system|os.system"):
        load_foreign_checkpoint(path)
    # Also a plain pickle (not torch's zip format).
    with (tmp_path / "evil2.pth").open("wb") as handle:
        pickle.dump({"model": Exploit()}, handle, protocol=2)
    with pytest.raises(UnsafeCheckpoint):
        load_foreign_checkpoint(tmp_path / "evil2.pth")
    assert not MARKER.exists()
    assert convert_cli(["import", str(path), "--out", str(tmp_path / "x.pt"), "--model", "vit_b"]) == 2
    assert not MARKER.exists()


def test_export_refuses_what_transformers_cannot_represent(tmp_path):
    hf = transformers.VideoMAEForVideoClassification(hf_config("tiny", num_labels=3))
    checkpoint = hf_to_ours(hf.config.to_dict(), hf.state_dict())
    checkpoint["extras"]["classifier"]["pos_embed_grid"] = [4, 4, 4]
    # The remedy names the pretraining grid: 4 time slots of 2 frames, 4 patches of 8 px.
    with pytest.raises(ConversionError, match="resampled.*data.num_frames=8 data.crop_size=32"):
        ours_to_hf(checkpoint)


def test_converted_weights_work_for_finetuning_and_evaluation(tmp_path, demo_cache):
    from conftest import compose_config, tiny_finetune_overrides

    from video_mae.tasks import evaluate as evaluate_task
    from video_mae.tasks import finetune as finetune_task

    # A transformers model with the tiny test architecture (32 wide, 2 blocks, 2 heads; 8 frames of 32 px).
    size = dict(hidden_size=32, num_attention_heads=2, intermediate_size=128, num_hidden_layers=2, decoder_hidden_size=32,
                decoder_num_attention_heads=2, decoder_intermediate_size=128, decoder_num_hidden_layers=1,
                image_size=32, patch_size=8, num_frames=8, tubelet_size=2, layer_norm_eps=1e-6)  # fmt: skip
    pre = transformers.VideoMAEForPreTraining(transformers.VideoMAEConfig(**size, use_mean_pooling=False))
    assert convert_cli(["import", str(save_hf(pre, tmp_path / "pre_hf")), "--out", str(tmp_path / "pre.pt")]) == 0
    cfg = compose_config("finetune", tiny_finetune_overrides(demo_cache) + ["train.epochs=1", f"pretrained={tmp_path / 'pre.pt'}"])
    finetune_task.run(cfg, tmp_path / "ft")
    cls = transformers.VideoMAEForVideoClassification(transformers.VideoMAEConfig(**size, num_labels=8))
    assert convert_cli(["import", str(save_hf(cls, tmp_path / "cls_hf")), "--out", str(tmp_path / "cls.pt")]) == 0
    assert load_checkpoint(tmp_path / "ft" / "checkpoints" / "last.pt")["extras"]["classifier"]["num_classes"] == 8
    demo_val = next(Path(demo_cache).glob("demo_v2_*/val.txt"))
    summary = evaluate_task.run(
        compose_config(
            "evaluate", [f"checkpoint={tmp_path / 'cls.pt'}", f"list={demo_val}", "num_workers=0", "eval.num_clips=1", "eval.num_crops=1"]
        ),
        tmp_path / "ev",
    )
    assert summary["num_videos"] == 8
