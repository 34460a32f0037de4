"""Fine-tuning (or probing) a video encoder for action recognition."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ..checkpoint import load_checkpoint
from ..data.dataset import BadVideoLog
from ..data.list_check import check_list
from ..data.lists import VideoRecord
from ..data.settings import DataSettings
from ..distributed import DistContext, shard_model
from ..engine.ema import EmaWeights
from ..engine.evaluate import EvalSettings, evaluate_videos
from ..engine.mixup import VideoMixup
from ..engine.optim import OptimSettings
from ..engine.train import TrainHooks, TrainSettings
from ..models import build
from ..models.pretrained import load_encoder_weights
from ..run_files import BEST
from .resume_free import resume_free_keys
from .session import task_session
from .training import TrainingRun, open_training_run

log = logging.getLogger(__name__)

# Keys that do not change what is trained: a run may be resumed with other values.
# conf/finetune.yaml leaves the same keys (but train.epochs) out of the run directory's name.
RESUME_FREE_KEYS = resume_free_keys("finetune")


@dataclass
class ClassifierSpec:
    """What, beyond the config, rebuilds a fine-tuned model: saved in its checkpoints."""

    num_classes: int
    pos_embed_grid: list[int] | None
    class_names: list[str]

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        self.__init__(**state)


@dataclass
class BestScore:
    """Best validation top-1 so far and its epoch (1-based); saved with the run."""

    top1: float = -1.0
    epoch: int = 0

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        self.__init__(**state)


def build_classifier(cfg: DictConfig, num_classes: int, pos_embed_grid: list[int] | None) -> torch.nn.Module:
    """The fine-tuning model (or probe) ``cfg`` describes, with an encoder from ``cfg.model.encoder``."""
    return build.build_classifier(
        OmegaConf.to_container(cfg.model.encoder, resolve=True), num_classes, OmegaConf.to_container(cfg.head, resolve=True),
        probe=cfg.probe, probe_heads=int(cfg.probe_heads), pos_embed_grid=pos_embed_grid,
    )  # fmt: skip


def pretraining_grid(state: dict) -> list[int]:
    """The token grid a pretraining checkpoint was trained on, from its stored config."""
    try:
        enc = state["config"]["model"]["encoder"]
        return [
            enc["num_frames"] // enc["tubelet_size"],
            enc["img_size"] // enc["patch_size"],
            enc["img_size"] // enc["patch_size"],
        ]
    except (KeyError, TypeError):
        raise ValueError(
            "pretrained: the checkpoint holds no pretraining config (model.encoder); is it a vmae-pretrain checkpoint?"
        ) from None


def run(cfg: DictConfig, run_dir: str | Path | None = None) -> dict:
    """Fine-tunes (or probes) as ``cfg`` says; ends with the multi-view evaluation
    of the best checkpoint on the validation list. Returns a summary."""
    train: TrainSettings = instantiate(cfg.train, _convert_="all")
    data: DataSettings = instantiate(cfg.data, _convert_="all")
    optim: OptimSettings = instantiate(cfg.optim, _convert_="all")
    with task_session(train.device, train.precision, int(cfg.model.encoder.embed_dim)) as session:
        return _finetune(cfg, open_training_run(cfg, run_dir, (train, data, optim), RESUME_FREE_KEYS, session))


def _build_model(cfg: DictConfig, run: TrainingRun, num_classes: int) -> tuple[torch.nn.Module, list[int] | None]:
    """The classifier, with the pretrained encoder's weights in a new run (a resumed one
    reloads its own), and the pretraining grid its positions are resampled from (None: the same)."""
    data = run.data
    pretrained_state = load_checkpoint(cfg.pretrained) if cfg.pretrained else None
    grid = None
    if pretrained_state is not None:
        source = pretraining_grid(pretrained_state)
        target = [data.num_frames // cfg.model.encoder.tubelet_size, data.crop_size // cfg.model.encoder.patch_size]
        grid = source if source != [target[0], target[1], target[1]] else None
    model = build_classifier(cfg, num_classes, grid)
    if pretrained_state is not None and run.folder.resume_from is None:
        report = load_encoder_weights(model, pretrained_state["model"])
        run.logger.log("pretrained", step=0, path=str(cfg.pretrained), pos_embed_grid=grid, **report.summary())
        log.info("pretrained encoder from %s: %s", cfg.pretrained, report.summary())
    return model, grid


def _finetune(cfg: DictConfig, run: TrainingRun) -> dict:
    train, data, optim = run.train, run.data, run.optim
    device, context, precision = run.session.device, run.session.context, run.session.precision
    eval_settings: EvalSettings = instantiate(cfg.eval, _convert_="all")
    train_records, val_records = data.records()
    class_names = data.classes(train_records)
    num_classes = len(class_names)
    run.logger.log("data_check", step=0, **check_list(train_records, data.train_list or "demo training list", num_classes))
    if val_records:
        run.logger.log("data_check", step=0, **check_list(val_records, data.val_list or "demo validation list", num_classes))
    model, grid = _build_model(cfg, run, num_classes)
    model.to(device)
    if train.fsdp and context.distributed:
        if cfg.ema is not None:
            raise ValueError("ema is not supported with train.fsdp=true (the average would be sharded too)")
        shard_model(model)
    plan = run.plan(model, train_records, instantiate(cfg.augment, _convert_="all"))

    mixup: VideoMixup = instantiate(cfg.mixup, num_classes=num_classes, seed=train.seed)
    if mixup.active and (train.batch_size * data.clips_per_video) % 2:
        raise ValueError("mixup needs an even number of clips per step: make train.batch_size x data.clips_per_video even")

    def loss_fn(net: torch.nn.Module, clips: torch.Tensor, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if mixup.active:
            clips, targets = mixup(clips, labels)
            logits = net(clips)
            return torch.sum(-targets * F.log_softmax(logits.float(), dim=-1), dim=-1).mean()
        return F.cross_entropy(net(clips).float(), labels, label_smoothing=mixup.label_smoothing)

    ema = EmaWeights(model, float(cfg.ema)) if cfg.ema is not None else None
    best = BestScore()
    extras = {
        "classifier": ClassifierSpec(num_classes=num_classes, pos_embed_grid=grid, class_names=class_names),
        "mixup": mixup,
        "best": best,
    }
    if ema is not None:
        extras["ema"] = ema
    val_every = int(cfg.val_every_epochs)
    quick = EvalSettings(num_clips=1, num_crops=1, short_side=eval_settings.short_side,
                         batch_size=eval_settings.batch_size, clips_per_forward=eval_settings.clips_per_forward)  # fmt: skip

    def on_epoch_end(epoch: int) -> None:
        if not val_records or not val_every or (epoch + 1) % val_every:
            run.curves.epoch_end()
            return
        metrics = evaluate_videos(model, val_records, data, quick, device, precision, class_names, context, bad_videos=run.bad_videos)
        record = {f"val_{key}": value for key, value in metrics.items()}
        if ema is not None:
            ema_metrics = evaluate_videos(ema.module, val_records, data, quick, device, precision, class_names, context)
            record.update({f"val_ema_{key}": value for key, value in ema_metrics.items()})
        improved = metrics["top1"] > best.top1
        if improved:
            best.top1, best.epoch = metrics["top1"], epoch + 1
            # last.pt was just written for this epoch (with the old best); save again so
            # that it carries the new best score, with best.pt as its evaluation copy.
            trainer.save(evaluation_copy=BEST)
        run.logger.log("val", step=trainer.step, epoch=epoch, best_top1=best.top1, best_epoch=best.epoch, **record)
        log.info("epoch %d: val top-1 %.2f%% (best %.2f%%, epoch %d)", epoch + 1, metrics["top1"], best.top1, best.epoch)
        run.curves.epoch_end()

    hooks = TrainHooks(on_epoch_end=on_epoch_end, on_step_end=(lambda step: ema.update(model, step)) if ema is not None else None)
    trainer = run.trainer(model, loss_fn, plan, hooks, extras)
    run.announce(plan, f"{num_classes} classes, {len(train_records)} training videos")
    if run.folder.resume_from is not None:
        trainer.resume(run.folder.resume_from)
    else:
        run.log_start(
            plan,
            {
                "val_videos": len(val_records or []),
                "num_classes": num_classes,
                "layer_decay": optim.layer_decay,
                "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
                "probe": cfg.probe,
                "pretrained": str(cfg.pretrained) if cfg.pretrained else None,
            },
        )  # fmt: skip
    try:
        summary = trainer.fit()
        run.curves.final()
        test_metrics = None
        if val_records:
            final = run.folder.best if run.folder.best.is_file() else run.folder.last
            test_metrics = evaluate_checkpoint_in_place(
                model, final, val_records, data, eval_settings, device, precision, class_names, run.path, run.bad_videos, context
            )
            run.logger.log("test", step=trainer.step, checkpoint=str(final), **test_metrics)
    finally:
        run.logger.close()
    summary = {**summary, "best_val_top1": best.top1, "best_epoch": best.epoch, "test": test_metrics, "run_dir": str(run.path)}
    return run.session.finish(run.path, summary)


def evaluate_checkpoint_in_place(
    model: torch.nn.Module,
    checkpoint: Path,
    records: Sequence[VideoRecord],
    data: DataSettings,
    settings: EvalSettings,
    device: torch.device,
    precision: str,
    class_names: list[str],
    out_dir: Path,
    bad_videos: BadVideoLog,
    context: DistContext = DistContext(),
) -> dict:
    """Loads ``checkpoint``'s weights (its EMA weights with ``settings.use_ema``) into
    ``model`` and runs the full multi-view evaluation, writing the reports to ``out_dir``."""
    state = load_checkpoint(checkpoint)
    if settings.use_ema:
        if "ema" not in state.get("extras", {}):
            raise ValueError(f"eval.use_ema=true but {checkpoint} holds no EMA weights (set ema=<decay> when fine-tuning)")
        model.load_state_dict(state["extras"]["ema"])
    else:
        model.load_state_dict(state["model"])
    return evaluate_videos(
        model, records, data, settings, device, precision, class_names, context,
        out_dir=out_dir if context.is_main else None, bad_videos=bad_videos,
    )  # fmt: skip
