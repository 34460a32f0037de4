"""Does the pretraining pay off? VideoMAE's data-efficiency claim, in miniature, on the demo.

One MAE pretraining on the demo's unlabelled pool, then, for a few label budgets (labelled
videos per class, drawn from the demo's labelled split) and seeds, the same downstream
recipes (``vmae-finetune``'s demo recipe: fine-tuning, linear probe, attentive probe) from
the pretrained encoder and from random initialisation. Every score is the multi-view test
top-1 on the demo's held-out ``test`` split, which no run sees before its last epoch (no
epoch is picked on it: per-epoch validation is off). Every step is an ordinary pretraining
or fine-tuning run with its own run folder, so a killed benchmark resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig

from ..data.demo import ensure_demo_dataset
from ..data.lists import VideoRecord, read_data_list, write_data_list
from ..data.settings import DataSettings
from . import finetune, pretrain

log = logging.getLogger(__name__)

METHODS = ("finetune", "linear", "attentive")
INITS = ("pretrained", "random")
LABELS = {
    ("finetune", "pretrained"): "fine-tune, MAE-pretrained",
    ("finetune", "random"): "fine-tune, random init",
    ("linear", "pretrained"): "linear probe, MAE-pretrained",
    ("linear", "random"): "linear probe, random encoder",
    ("attentive", "pretrained"): "attentive probe, MAE-pretrained",
    ("attentive", "random"): "attentive probe, random encoder",
}


@dataclass(frozen=True)
class BenchmarkSettings:
    """out: the benchmark's folder. world: the demo world. labels_per_class: the label
    budgets. seeds: one labelled subset and one training seed each. pretrain_epochs: the
    pretraining's length (None: the demo recipe's). overrides: Hydra overrides for every run
    (e.g. ``data.demo.cache_dir=...``); pretrain_overrides / finetune_overrides: for one kind."""

    out: str
    world: str = "shapes"
    labels_per_class: tuple[int, ...] = (5, 10, 20)
    seeds: tuple[int, ...] = (0, 1, 2)
    methods: tuple[str, ...] = METHODS
    pretrain_epochs: int | None = 12
    overrides: tuple[str, ...] = ()
    pretrain_overrides: tuple[str, ...] = ()
    finetune_overrides: tuple[str, ...] = ()
    # Probes train a head on frozen features: no layer decay, and the linear one a 10x higher
    # learning rate than fine-tuning (1e-2 at 8 videos a step), as linear probes usually take.
    linear_probe_overrides: tuple[str, ...] = ("optim.base_lr=0.32", "optim.layer_decay=null")
    attentive_probe_overrides: tuple[str, ...] = ("optim.layer_decay=null",)

    def __post_init__(self) -> None:
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
        if not self.labels_per_class or min(self.labels_per_class) < 1 or not self.seeds:
            raise ValueError("labels_per_class needs positive budgets and seeds at least one seed")


Compose = Callable[[str, list[str]], DictConfig]


def labelled_subset(records: Sequence[VideoRecord], classes: int, per_class: int, seed: int) -> list[tuple[str, int]]:
    """``per_class`` videos of each class, drawn without replacement from ``seed``; the
    smaller budgets of a seed are the start of its larger ones (nested subsets)."""
    rng = np.random.default_rng([seed, 0x1AB])
    chosen = []
    for label in range(classes):
        rows = [r for r in records if r.label == label]
        if len(rows) < per_class:
            raise ValueError(f"{per_class} labelled videos per class asked, but class {label} has {len(rows)}")
        order = rng.permutation(len(rows))[:per_class]
        chosen += [(rows[i].path, label) for i in sorted(order)]
    return chosen


def run(settings: BenchmarkSettings, compose: Compose) -> dict:
    """Runs (or resumes) the whole benchmark; writes results.json, table.md and
    accuracy.png into ``settings.out`` and returns the results."""
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    # One process decodes (the videos are tiny) and keeps what it decoded: each video is
    # decoded once per run instead of once per epoch.
    common = [f"data.demo.world={settings.world}", "train.progress_bar=false", "data.num_workers=0", "data.cache_decoded=true",
              *settings.overrides]  # fmt: skip
    epochs = [f"train.epochs={settings.pretrain_epochs}"] if settings.pretrain_epochs else []
    pre_cfg = compose("pretrain", common + epochs + list(settings.pretrain_overrides))
    log.info("pretraining on the unlabelled pool: %s", out / "pretrain")
    pre_summary = pretrain.run(pre_cfg, out / "pretrain")
    checkpoint = Path(pre_summary["checkpoint"])

    data: DataSettings = instantiate(compose("finetune", common).data, _convert_="all")
    demo = ensure_demo_dataset(data.demo)
    labelled = read_data_list(demo.list_path("train"))
    (out / "lists").mkdir(exist_ok=True)
    rows = []
    for per_class in settings.labels_per_class:
        for seed in settings.seeds:
            subset = out / "lists" / f"train_{per_class}pc_seed{seed}.txt"
            write_data_list(subset, labelled_subset(labelled, len(demo.classes), per_class, seed))
            for method in settings.methods:
                for init in INITS:
                    name = f"{method}_{init}_{per_class}pc_seed{seed}"
                    overrides = common + [
                        f"data.train_list={subset}",
                        f"data.val_list={demo.test_list}",
                        f"data.class_names={demo.root / 'classes.txt'}",
                        f"data.num_classes={len(demo.classes)}",
                        "val_every_epochs=0",  # nothing is picked on the held-out videos
                        f"train.seed={seed}",
                        f"pretrained={checkpoint}" if init == "pretrained" else "pretrained=null",
                        f"probe={method}" if method != "finetune" else "probe=null",
                        *settings.finetune_overrides,
                        *{"linear": settings.linear_probe_overrides, "attentive": settings.attentive_probe_overrides}.get(method, ()),
                    ]
                    summary = finetune.run(compose("finetune", overrides), out / "runs" / name)
                    test = summary["test"] or {}
                    rows.append({"method": method, "init": init, "labels_per_class": per_class, "seed": seed,
                                 "top1": test.get("top1"), "top5": test.get("top5"), "run_dir": summary["run_dir"]})  # fmt: skip
                    log.info("%s: test top-1 %.1f", name, test.get("top1", float("nan")))
    results = {
        "settings": asdict(settings),
        "pretraining": {k: pre_summary.get(k) for k in ("first_loss", "last_loss", "step", "epochs", "reconstruction", "checkpoint")},
        "test_videos": len(read_data_list(demo.test_list)),
        "classes": list(demo.classes),
        "runs": rows,
    }
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    (out / "table.md").write_text(markdown_table(results), encoding="utf-8")
    draw_accuracy_plot(results, out / "accuracy.png")
    return results


def _scores(runs: Sequence[dict], method: str, init: str, per_class: int) -> list[float]:
    return [
        r["top1"] for r in runs if (r["method"], r["init"], r["labels_per_class"]) == (method, init, per_class) and r["top1"] is not None
    ]


def markdown_table(results: dict) -> str:
    """Test top-1 per method and initialisation (rows) and label budget (columns):
    the mean of the seeds, then each seed's score."""
    settings, runs = results["settings"], results["runs"]
    budgets = settings["labels_per_class"]
    header = "| encoder and recipe | " + " | ".join(f"{n} labels / class" for n in budgets) + " |"
    lines = [header, "|---|" + "---|" * len(budgets)]
    for method in settings["methods"]:
        for init in INITS:
            cells = []
            for n in budgets:
                scores = _scores(runs, method, init, n)
                cells.append(f"**{np.mean(scores):.1f}** ({' / '.join(f'{s:.1f}' for s in scores)})" if scores else "")
            lines.append(f"| {LABELS[(method, init)]} | " + " | ".join(cells) + " |")
    recon = (results["pretraining"] or {}).get("reconstruction") or {}
    notes = [
        "",
        f"Test top-1 (%) on {results['test_videos']} held-out videos, {len(results['classes'])} classes "
        f"(chance {100 / len(results['classes']):.1f}%): mean of seeds {', '.join(map(str, settings['seeds']))} in bold, "
        "then each seed.",
    ]
    if recon:
        notes.append(
            f"Pretraining ({results['pretraining']['epochs']} epochs, {results['pretraining']['step']} steps): error on hidden "
            f"tubelets {recon['hidden_mse']:.4f}, clip's mean colour {recon['mean_colour_mse']:.4f}, nearest visible tubelet "
            f"{recon['nearest_visible_mse']:.4f} ({recon['clips']} validation clips)."
        )
    return "\n".join(lines + notes) + "\n"


def draw_accuracy_plot(results: dict, path: Path) -> None:
    """Test top-1 against labels per class: one line per method and initialisation
    (the mean of the seeds), the seeds' range shaded."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # only for the plot: matplotlib is slow to import
    from matplotlib.figure import Figure

    settings, runs = results["settings"], results["runs"]
    budgets = settings["labels_per_class"]
    methods = settings["methods"]
    figure = Figure(figsize=(4.2 * len(methods), 3.6), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(methods), squeeze=False)[0]
    chance = 100 / len(results["classes"])
    for ax, method in zip(axes, methods):
        for init, colour in (("pretrained", "tab:blue"), ("random", "tab:orange")):
            per_budget = [_scores(runs, method, init, n) for n in budgets]
            kept = [(n, s) for n, s in zip(budgets, per_budget) if s]
            if not kept:
                continue
            xs = [n for n, _ in kept]
            ax.plot(xs, [np.mean(s) for _, s in kept], marker="o", color=colour, label=LABELS[(method, init)].split(", ")[1])
            ax.fill_between(xs, [min(s) for _, s in kept], [max(s) for _, s in kept], color=colour, alpha=0.2)
        ax.axhline(chance, color="grey", linestyle=":", linewidth=1, label="chance")
        ax.set_xscale("log")
        ax.minorticks_off()  # only the budgets are labelled on the log axis
        ax.set_xticks(budgets, [str(n) for n in budgets])
        ax.set_xlabel("labelled videos per class")
        ax.set_ylabel("test top-1 (%)")
        ax.set_title({"finetune": "fine-tuning", "linear": "linear probe", "attentive": "attentive probe"}[method])
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    figure.suptitle(f"demo world '{settings['world']}': mean of {len(settings['seeds'])} seeds, range shaded")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
