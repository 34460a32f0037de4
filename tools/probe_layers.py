"""Where does a pretrained encoder keep the class? Linear probes per layer, against a random encoder.

For a demo world, renders 20 labelled videos per class (training) and 30 per class
(testing) with their own seeds, takes the 8 frames at stride 2 after the first two, and fits
an L-BFGS logistic regression (standardised features) on (a) the mean of the tokens after
each layer, and (b) all tokens of the last layer flattened (so that where a thing is counts).
The same for a randomly initialised encoder of the checkpoint's architecture.

    python tools/probe_layers.py runs/learning_textured/pretrain/checkpoints/last.pt --world textured
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from video_mae.checkpoint import load_checkpoint
from video_mae.data.demo import DemoSpec, render_video
from video_mae.models.build import build_encoder

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1, 1)


def clips(spec: DemoSpec, split: int, per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
    videos, labels = [], []
    for label in range(8):
        for i in range(per_class):
            videos.append(render_video(label, np.random.default_rng([7, split, label, i]), spec))
            labels.append(label)
    frames = torch.from_numpy(np.stack(videos))[:, 2:17:2]  # 8 frames at stride 2
    x = frames.permute(0, 4, 1, 2, 3).float() / 255
    return (x - MEAN) / STD, torch.tensor(labels)


@torch.no_grad()
def tokens_per_layer(encoder, x: torch.Tensor) -> list[torch.Tensor]:
    encoder.eval()
    h = encoder.patch_embed(x) + encoder.pos_embed
    out = [h]
    for block in encoder.blocks:
        h = block(h)
        out.append(h)
    out.append(encoder.norm(h))
    return out


def probe(train: torch.Tensor, train_y: torch.Tensor, test: torch.Tensor, test_y: torch.Tensor, wd: float = 1e-2) -> float:
    mu, sd = train.mean(0), train.std(0) + 1e-6
    a, b = (train - mu) / sd, (test - mu) / sd
    weight = torch.zeros(a.shape[1], 8, requires_grad=True)
    bias = torch.zeros(8, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=300, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(a @ weight + bias, train_y) + wd * (weight**2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return ((b @ weight + bias).argmax(1) == test_y).float().mean().item() * 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--world", default="shapes")
    args = parser.parse_args()
    state = load_checkpoint(args.checkpoint)
    config = state["config"]["model"]["encoder"]
    pretrained = build_encoder(config)
    pretrained.load_state_dict({k[len("encoder.") :]: v for k, v in state["model"].items() if k.startswith("encoder.")})
    torch.manual_seed(0)
    random = build_encoder(config)
    spec = DemoSpec(world=args.world)
    train_x, train_y = clips(spec, 1, 20)
    test_x, test_y = clips(spec, 2, 30)
    for name, encoder in (("random", random), ("pretrained", pretrained)):
        train_tokens, test_tokens = tokens_per_layer(encoder, train_x), tokens_per_layer(encoder, test_x)
        means = [probe(a.mean(1), train_y, b.mean(1), test_y) for a, b in zip(train_tokens, test_tokens)]
        flat = probe(train_tokens[-1].flatten(1), train_y, test_tokens[-1].flatten(1), test_y)
        layers = ", ".join(f"{i}: {v:.1f}" for i, v in enumerate(means))
        print(f"{name}: mean-pooled tokens by layer (0 = embedding, last = after the final norm) {layers}; "
              f"all last-layer tokens {flat:.1f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
