"""Hugging Face ``transformers`` VideoMAE directories <-> our checkpoints.

Reads ``config.json`` with ``model.safetensors`` or ``pytorch_model.bin`` of
``VideoMAEForPreTraining``, ``VideoMAEModel`` and ``VideoMAEForVideoClassification``,
taking the architecture from the config as given. Writes directories that
``transformers`` loads without unused or missing weights. Attention biases are
read from either layout (``q_bias``/``v_bias`` parameters, as on the Hub, or
``query.bias``/``value.bias``, as transformers 5 names them) and written in the
Hub layout, which both transformers 4 and 5 load.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from ..checkpoint import load_failure, set_default_mode
from ..constants import IMAGENET_MEAN, IMAGENET_STD
from .hf_card import image_processor_config, model_card
from .ours import classification_checkpoint, encoder_config, pretraining_checkpoint

ARCHITECTURES = {
    "VideoMAEForPreTraining": "pretraining",
    "VideoMAEModel": "encoder",
    "VideoMAEForVideoClassification": "classification",
}
# transformers hard-codes these LayerNorm epsilons (PyTorch's default), whatever layer_norm_eps says.
HF_DECODER_NORM_EPS = 1e-5
HF_FC_NORM_EPS = 1e-5


class ConversionError(ValueError):
    """The weights do not match the expected layout; the message lists the keys."""


def _square(value: int | Sequence[int], name: str) -> int:
    if isinstance(value, (list, tuple)):
        if len(set(value)) != 1:
            raise ConversionError(f"config.json: {name}={value} is not square; only square sizes are supported")
        return int(value[0])
    return int(value)


# config.json fields we read, and the JSON types each must have (bool is not an int here).
_CONFIG_TYPES: dict[str, tuple[type, ...]] = {
    **{key: (int,) for key in (
        "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "num_frames",
        "tubelet_size", "num_channels", "decoder_hidden_size", "decoder_num_hidden_layers",
        "decoder_num_attention_heads", "decoder_intermediate_size",
    )},
    "image_size": (int, list),
    "patch_size": (int, list),
    "layer_norm_eps": (int, float),
    "qkv_bias": (bool,),
    "qv_bias": (bool,),
    "use_mean_pooling": (bool,),
    "norm_pix_loss": (bool,),
    "hidden_act": (str,),
    "model_type": (str,),
    "architectures": (list,),
    "id2label": (dict,),
}  # fmt: skip


def _check_config(config: object, path: Path) -> dict:
    """config.json must be an object whose fields we read have the right types and fit together."""
    if not isinstance(config, dict):
        raise ConversionError(f"{path}: expected a JSON object, got a JSON {type(config).__name__}")
    for key, types in _CONFIG_TYPES.items():
        if key not in config:
            continue
        value = config[key]
        wrong_bool = isinstance(value, bool) and bool not in types
        if wrong_bool or not isinstance(value, types):
            wanted = " or ".join({int: "an integer", float: "a number", bool: "true/false", str: "a string",
                                  list: "a list", dict: "an object"}[t] for t in types)  # fmt: skip
            raise ConversionError(f"{path}: {key} must be {wanted}, got {json.dumps(value)}")
        if isinstance(value, int) and not isinstance(value, bool) and key != "layer_norm_eps" and value < 1:
            raise ConversionError(f"{path}: {key} must be at least 1, got {value}")
    for width, heads in (("hidden_size", "num_attention_heads"), ("decoder_hidden_size", "decoder_num_attention_heads")):
        if width in config and heads in config and config[width] % config[heads]:
            raise ConversionError(
                f"{path}: {heads}={config[heads]} does not divide {width}={config[width]} (each head needs an equal share)"
            )
    return config


def read_hf_dir(folder: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(config.json as a dict, state dict) of a saved transformers model."""
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ConversionError(f"{folder}: no config.json (is it a Hugging Face model directory?)")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ConversionError(f"{config_path}: line {err.lineno}, column {err.colno}: not valid JSON ({err.msg})") from None
    except UnicodeDecodeError:
        raise ConversionError(f"{config_path}: not UTF-8 text") from None
    config = _check_config(config, config_path)
    if config.get("model_type") not in (None, "videomae"):
        raise ConversionError(f"{config_path}: model_type is {config.get('model_type')!r}, not 'videomae'")
    weights = folder / "model.safetensors"
    if weights.is_file():
        from safetensors.torch import load_file  # optional: safetensors comes with the [interop] extra

        try:
            state = load_file(str(weights))
        except Exception as err:  # SafetensorError: a truncated or foreign file
            raise ConversionError(f"{weights}: not a readable safetensors file ({str(err).strip() or type(err).__name__})") from None
    elif (folder / "pytorch_model.bin").is_file():
        weights = folder / "pytorch_model.bin"
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as err:
            raise ConversionError(f"{weights}: not readable ({load_failure(err)})") from None
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise ConversionError(f"{weights}: expected a dict of tensors")
    else:
        raise ConversionError(f"{folder}: no model.safetensors or pytorch_model.bin")
    return config, state


def _architecture(config: dict, state: dict) -> str:
    for name in config.get("architectures") or []:
        if name in ARCHITECTURES:
            return ARCHITECTURES[name]
    if any(key.startswith("decoder.") for key in state):
        return "pretraining"
    if any(key.startswith("classifier.") for key in state):
        return "classification"
    return "encoder"


def _take(state: dict, key: str) -> torch.Tensor:
    if key not in state:
        raise ConversionError(f"missing weight {key}")
    return state.pop(key)


# Per transformer layer, the modules with a weight and a bias: (transformers' name, ours).
_BLOCK_LINEAR_AND_NORM_NAMES = (
    ("attention.output.dense", "attn.proj"),
    ("layernorm_before", "norm1"),
    ("layernorm_after", "norm2"),
    ("intermediate.dense", "mlp.fc1"),
    ("output.dense", "mlp.fc2"),
)


def _block_from_hf(state: dict, src: str, dst: str, qkv_bias: bool, out: dict) -> None:
    """Moves one transformer layer from HF names (prefix ``src``) to ours (prefix ``dst``)."""
    att = f"{src}attention.attention."
    q, k, v = (_take(state, f"{att}{name}.weight") for name in ("query", "key", "value"))
    out[f"{dst}attn.qkv.weight"] = torch.cat([q, k, v])
    if qkv_bias:
        for ours, hub, new in (("q_bias", "q_bias", "query.bias"), ("v_bias", "v_bias", "value.bias")):
            out[f"{dst}attn.{ours}"] = state.pop(f"{att}{hub}") if f"{att}{hub}" in state else _take(state, f"{att}{new}")
    for hf_name, our_name in _BLOCK_LINEAR_AND_NORM_NAMES:
        for part in ("weight", "bias"):
            out[f"{dst}{our_name}.{part}"] = _take(state, f"{src}{hf_name}.{part}")


def _block_to_hf(state: dict, src: str, dst: str, qkv_bias: bool, out: dict) -> None:
    att = f"{dst}attention.attention."
    q, k, v = _take(state, f"{src}attn.qkv.weight").chunk(3)
    out[f"{att}query.weight"], out[f"{att}key.weight"], out[f"{att}value.weight"] = q, k, v
    if qkv_bias:
        out[f"{att}q_bias"] = _take(state, f"{src}attn.q_bias")
        out[f"{att}v_bias"] = _take(state, f"{src}attn.v_bias")
    for hf_name, our_name in _BLOCK_LINEAR_AND_NORM_NAMES:
        for part in ("weight", "bias"):
            out[f"{dst}{hf_name}.{part}"] = _take(state, f"{src}{our_name}.{part}")


def hf_to_ours(config: dict, state: dict[str, torch.Tensor], source: str = "") -> dict:
    """Our checkpoint dict for a transformers VideoMAE model (config.json + state dict)."""
    state = dict(state)
    kind = _architecture(config, state)
    if config.get("hidden_act", "gelu") != "gelu":
        raise ConversionError(f"hidden_act={config['hidden_act']!r}: only 'gelu' is supported")
    qkv_bias = bool(config.get("qv_bias", config.get("qkv_bias", True)))
    mean_pooling = bool(config.get("use_mean_pooling", True))
    hidden = int(config.get("hidden_size", 768))
    encoder = encoder_config(
        img_size=_square(config.get("image_size", 224), "image_size"),
        patch_size=_square(config.get("patch_size", 16), "patch_size"),
        num_frames=int(config.get("num_frames", 16)),
        tubelet_size=int(config.get("tubelet_size", 2)),
        in_chans=int(config.get("num_channels", 3)),
        embed_dim=hidden,
        depth=int(config.get("num_hidden_layers", 12)),
        num_heads=int(config.get("num_attention_heads", 12)),
        mlp_ratio=int(config.get("intermediate_size", 4 * hidden)) / hidden,
        qkv_bias=qkv_bias,
        norm_eps=float(config.get("layer_norm_eps", 1e-12)),
        # transformers' encoder ends with a norm only without mean pooling.
        final_norm=not mean_pooling,
    )
    prefix = "videomae." if any(key.startswith("videomae.") for key in state) else ""
    out: dict[str, torch.Tensor] = {}
    for part in ("weight", "bias"):
        out[f"encoder.patch_embed.proj.{part}"] = _take(state, f"{prefix}embeddings.patch_embeddings.projection.{part}")
    for i in range(encoder["depth"]):
        _block_from_hf(state, f"{prefix}encoder.layer.{i}.", f"encoder.blocks.{i}.", qkv_bias, out)
    if not mean_pooling:
        for part in ("weight", "bias"):
            out[f"encoder.norm.{part}"] = _take(state, f"{prefix}layernorm.{part}")
    origin = {"format": "huggingface", "architecture": kind, "path": source}
    if kind == "classification":
        if mean_pooling:
            for part in ("weight", "bias"):
                out[f"fc_norm.{part}"] = _take(state, f"fc_norm.{part}")
        for part in ("weight", "bias"):
            out[f"head.{part}"] = _take(state, f"classifier.{part}")
        num_classes = out["head.weight"].shape[0]
        id2label = config.get("id2label") or {}
        names = [str(id2label.get(str(i), id2label.get(i, i))) for i in range(num_classes)]
        checkpoint = classification_checkpoint(out, encoder, mean_pooling, HF_FC_NORM_EPS, names, origin)
    elif kind == "pretraining":
        out["encoder_to_decoder.weight"] = _take(state, "encoder_to_decoder.weight")
        out["mask_token"] = _take(state, "mask_token")
        decoder_dim = int(config.get("decoder_hidden_size", 384))
        depth = int(config.get("decoder_num_hidden_layers", 4))
        for i in range(depth):
            _block_from_hf(state, f"decoder.decoder_layers.{i}.", f"decoder.blocks.{i}.", qkv_bias, out)
        for name in ("norm", "head"):
            for part in ("weight", "bias"):
                out[f"decoder.{name}.{part}"] = _take(state, f"decoder.{name}.{part}")
        decoder = {
            "decoder_dim": decoder_dim,
            "decoder_depth": depth,
            "decoder_num_heads": int(config.get("decoder_num_attention_heads", 6)),
            "decoder_mlp_ratio": int(config.get("decoder_intermediate_size", 4 * decoder_dim)) / decoder_dim,
            "decoder_norm_eps": HF_DECODER_NORM_EPS,
        }
        checkpoint = pretraining_checkpoint(out, encoder, decoder, bool(config.get("norm_pix_loss", True)), origin)
    else:
        checkpoint = pretraining_checkpoint(out, encoder, None, True, origin)
    if state:
        raise ConversionError(f"{source or 'state'}: {len(state)} weights were not used: {', '.join(sorted(state)[:12])}")
    return checkpoint


def ours_to_hf(checkpoint: dict) -> tuple[dict, dict[str, torch.Tensor]]:
    """(config.json dict, state dict) of the transformers model for one of our
    pretraining or classification checkpoints."""
    config = checkpoint["config"]
    state = dict(checkpoint["model"])
    extras = checkpoint.get("extras", {})
    enc = config["model"]["encoder"]
    if enc.get("layer_scale_init") is not None:
        raise ConversionError("transformers' VideoMAE has no layer scale; this model uses layer_scale_init")
    if enc.get("in_chans", 3) != 3:
        raise ConversionError("transformers' VideoMAE un-normalises with RGB ImageNet statistics; 3 channels only")
    classification = "classifier" in extras
    spec = extras.get("classifier", {})
    if classification and spec.get("pos_embed_grid"):
        t, h, _ = spec["pos_embed_grid"]
        frames, size = t * int(enc["tubelet_size"]), h * int(enc["patch_size"])
        raise ConversionError(
            "this classifier's positional table is resampled from its pretraining grid; "
            "transformers' VideoMAE computes the table from its own grid and cannot represent it. "
            f"To get an exportable classifier, fine-tune on the pretraining's grid: data.num_frames={frames} "
            f"data.crop_size={size}"
        )
    if classification and config.get("probe") is not None:
        raise ConversionError("probes have no transformers counterpart; export a fine-tuned model")
    hidden = int(enc["embed_dim"])
    mean_pooling = bool(config.get("head", {}).get("mean_pooling", True)) if classification else not enc.get("final_norm", True)
    qkv_bias = bool(enc.get("qkv_bias", True))
    data = config.get("data", {})
    if list(data.get("mean", IMAGENET_MEAN)) != list(IMAGENET_MEAN) or list(data.get("std", IMAGENET_STD)) != list(IMAGENET_STD):
        raise ConversionError("transformers' VideoMAE assumes ImageNet mean and std; this model was trained with others")
    hf_config = {
        "model_type": "videomae",
        "image_size": int(enc["img_size"]),
        "patch_size": int(enc["patch_size"]),
        "num_channels": 3,
        "num_frames": int(enc["num_frames"]),
        "tubelet_size": int(enc["tubelet_size"]),
        "hidden_size": hidden,
        "num_hidden_layers": int(enc["depth"]),
        "num_attention_heads": int(enc["num_heads"]),
        "intermediate_size": round(hidden * float(enc.get("mlp_ratio", 4.0))),
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "layer_norm_eps": float(enc.get("norm_eps", 1e-6)),
        "qkv_bias": qkv_bias,
        "use_mean_pooling": mean_pooling,
    }
    out: dict[str, torch.Tensor] = {}
    prefix = "videomae."
    for part in ("weight", "bias"):
        out[f"{prefix}embeddings.patch_embeddings.projection.{part}"] = _take(state, f"encoder.patch_embed.proj.{part}")
    for i in range(hf_config["num_hidden_layers"]):
        _block_to_hf(state, f"encoder.blocks.{i}.", f"{prefix}encoder.layer.{i}.", qkv_bias, out)
    if not mean_pooling:
        for part in ("weight", "bias"):
            out[f"{prefix}layernorm.{part}"] = _take(state, f"encoder.norm.{part}")
    if classification:
        names = spec.get("class_names") or [str(i) for i in range(spec["num_classes"])]
        hf_config.update(
            architectures=["VideoMAEForVideoClassification"],
            id2label={str(i): name for i, name in enumerate(names)},
            label2id={name: i for i, name in enumerate(names)},
        )
        if mean_pooling:
            for part in ("weight", "bias"):
                out[f"fc_norm.{part}"] = _take(state, f"fc_norm.{part}")
        for part in ("weight", "bias"):
            out[f"classifier.{part}"] = _take(state, f"head.{part}")
    else:
        model = config["model"]
        if "decoder_dim" not in model:
            raise ConversionError("this checkpoint holds an encoder without a decoder; nothing to export as VideoMAEForPreTraining")
        decoder_dim = int(model["decoder_dim"])
        ratio = model.get("decoder_mlp_ratio") or enc.get("mlp_ratio", 4.0)
        hf_config.update(
            architectures=["VideoMAEForPreTraining"],
            decoder_hidden_size=decoder_dim,
            decoder_num_hidden_layers=int(model["decoder_depth"]),
            decoder_num_attention_heads=int(model["decoder_num_heads"]),
            decoder_intermediate_size=round(decoder_dim * float(ratio)),
            norm_pix_loss=bool(model.get("norm_pix_loss", True)),
        )
        out["encoder_to_decoder.weight"] = _take(state, "encoder_to_decoder.weight")
        out["mask_token"] = _take(state, "mask_token")
        for i in range(hf_config["decoder_num_hidden_layers"]):
            _block_to_hf(state, f"decoder.blocks.{i}.", f"decoder.decoder_layers.{i}.", qkv_bias, out)
        for name in ("norm", "head"):
            for part in ("weight", "bias"):
                out[f"decoder.{name}.{part}"] = _take(state, f"decoder.{name}.{part}")
    if state:
        raise ConversionError(f"{len(state)} weights have no transformers counterpart: {', '.join(sorted(state)[:12])}")
    return hf_config, out


def write_hf_dir(checkpoint: dict, folder: str | Path, metrics: dict | None = None) -> Path:
    """Writes ``config.json``, ``model.safetensors``, the processor configs and a model card
    (``README.md``): a folder ``from_pretrained`` and ``pipeline()`` load."""
    from safetensors.torch import save_file  # optional: safetensors comes with the [interop] extra

    config, state = ours_to_hf(checkpoint)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"), metadata={"format": "pt"})
    set_default_mode(folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (folder / "preprocessor_config.json").write_text(json.dumps(image_processor_config(checkpoint), indent=2) + "\n", encoding="utf-8")
    (folder / "README.md").write_text(model_card(checkpoint, config, metrics), encoding="utf-8")
    return folder
