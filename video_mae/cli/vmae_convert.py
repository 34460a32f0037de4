"""vmae-convert: checkpoints to and from Hugging Face transformers and the official VideoMAE release."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def convert(argv: list[str] | None = None) -> int:
    """vmae-convert: released VideoMAE weights in, Hugging Face directories out."""
    parser = argparse.ArgumentParser(prog="vmae-convert", description="Convert VideoMAE checkpoints.")
    commands = parser.add_subparsers(dest="command", required=True)
    imp = commands.add_parser(
        "import",
        help="a transformers VideoMAE directory or an official VideoMAE/V2 .pth -> our checkpoint",
        description="Write one of our checkpoints (usable as pretrained= and checkpoint=) from released weights. "
        "Nothing in the source file is executed.",
    )
    imp.add_argument("source", type=Path, help="a transformers model directory, or an official .pth file")
    imp.add_argument("--out", type=Path, required=True, help="checkpoint to write (.pt)")
    imp.add_argument("--model", help="official .pth only: the architecture preset (vit_s, vit_b, vit_l, vit_h, vit_g)")
    imp.add_argument("--num-frames", type=int, default=16, help="official .pth only: frames per clip (default 16)")
    imp.add_argument("--img-size", type=int, default=224, help="official .pth only: crop size (default 224)")
    exp = commands.add_parser(
        "export",
        help="our pretraining or fine-tuned checkpoint -> a transformers directory",
        description="Write config.json and model.safetensors that transformers' from_pretrained loads.",
    )
    exp.add_argument("checkpoint", type=Path)
    exp.add_argument("--out", type=Path, required=True, help="directory to write")
    args = parser.parse_args(argv)

    from ..checkpoint import CheckpointError, save_checkpoint
    from ..convert import ConversionError, UnsafeCheckpoint, convert_checkpoint, export_huggingface

    try:
        if args.command == "import":
            preset = None
            if args.model is not None:
                from ..tasks.presets import model_preset

                try:
                    preset = model_preset(args.model, f"--model {args.model}")
                except ValueError as err:
                    parser.error(str(err))
            checkpoint = convert_checkpoint(args.source, preset, num_frames=args.num_frames, img_size=args.img_size)
            save_checkpoint(checkpoint, args.out)
            origin = checkpoint["converted_from"]
            print(f"wrote {args.out} ({origin['format']} {origin['architecture']}, {len(checkpoint['model'])} tensors)")
        else:
            folder = export_huggingface(args.checkpoint, args.out)
            print(f"wrote {folder}/config.json and {folder}/model.safetensors")
    except (ConversionError, UnsafeCheckpoint, CheckpointError, FileNotFoundError) as err:
        print(f"vmae-convert: error: {err}", file=sys.stderr)
        return 2
    return 0
