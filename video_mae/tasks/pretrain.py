"""Masked-autoencoder pretraining: config in, run directory and summary out."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ..checkpoint import CheckpointError, load_checkpoint
from ..data.list_check import check_list
from ..data.lists import VideoRecord
from ..data.loader import evaluation_dataset
from ..data.settings import DataSettings, data_settings_from_config
from ..data.transforms import EvalClipTransform
from ..distributed import shard_model
from ..engine.optim import OptimSettings
from ..engine.reconstruction import reconstruction_errors
from ..engine.train import TrainHooks, TrainSettings
from ..models.build import build_mae
from ..models.from_checkpoint import model_from_checkpoint
from ..models.key_check import load_fitting
from ..models.mae import MaskedAutoencoder
from ..visualize import reconstruct, reconstruction_grid, save_png
from .resume_free import resume_free_keys
from .session import task_session
from .training import TrainingRun, open_training_run

log = logging.getLogger(__name__)

# Keys that do not change what is trained: a run may be resumed with other values.
# conf/pretrain.yaml leaves the same keys (but train.epochs) out of the run directory's name.
RESUME_FREE_KEYS = resume_free_keys("pretrain")


def mae_loss(model: torch.nn.Module, clips: torch.Tensor, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    # Labels are not used: pretraining is self-supervised.
    return model(clips, generator=generator).loss


def build_model(cfg: DictConfig, data: DataSettings) -> MaskedAutoencoder:
    # Older checkpoints' configs have no decoder_mask_ratio: no decoder masking.
    return build_mae(
        OmegaConf.to_container(cfg.model, resolve=True), OmegaConf.to_container(cfg.mask, resolve=True),
        data.mean, data.std, decoder_mask_ratio=float(cfg.get("decoder_mask_ratio") or 0.0),
    )  # fmt: skip


def read_center_clip(path: str | Path, data: DataSettings, reader: str | None = None) -> torch.Tensor:
    """The centre clip of a video as the model sees it in evaluation: [C, T, H, W]."""
    dataset = evaluation_dataset(
        [VideoRecord(row=0, path=str(path), label=0)],
        data,
        EvalClipTransform(data.crop_size, data.mean, data.std),
        reader=reader,
        report_unreadable=False,
    )
    return dataset[0]["video"][0]


def read_center_clips(records: list[VideoRecord], data: DataSettings, limit: int) -> tuple[torch.Tensor | None, list[str]]:
    """The centre clips [n, C, T, H, W] of the first ``limit`` readable videos of ``records``
    (None when none is readable) and the paths of the unreadable ones met on the way:
    a broken video is skipped here, never a reason to stop a run."""
    dataset = evaluation_dataset(records, data, EvalClipTransform(data.crop_size, data.mean, data.std), report_unreadable=True)
    clips, unreadable = [], []
    for index, record in enumerate(records):
        if len(clips) >= limit:
            break
        item = dataset[index]
        if item["video"] is None:
            unreadable.append(f"{record.path} ({item['failed']})")
        else:
            clips.append(item["video"][0])
    return (torch.stack(clips) if clips else None), unreadable


def load_pretrained(path: str | Path, mask_ratio: float | None = None) -> tuple[MaskedAutoencoder, DataSettings]:
    """A pretraining checkpoint's model (on the CPU, eval mode) and data settings,
    rebuilt from the config stored in the checkpoint."""
    return pretrained_from_state(load_checkpoint(path), str(path), mask_ratio)


def pretrained_from_state(state: dict, path: str, mask_ratio: float | None = None) -> tuple[MaskedAutoencoder, DataSettings]:
    """``load_pretrained`` for a checkpoint already read (``path`` names it in errors)."""
    config = state.get("config")
    if not isinstance(config, dict) or "mask" not in config or "decoder_dim" not in config.get("model", {}):
        kind = "a fine-tuned classifier" if "classifier" in state.get("extras", {}) else "not a pretraining checkpoint"
        raise CheckpointError(f"{path}: {kind}; reconstructions need a vmae-pretrain checkpoint (its decoder and mask settings)")
    if mask_ratio is not None:
        config = {**config, "mask": {**config["mask"], "ratio": mask_ratio}}
    data = data_settings_from_config(config["data"])
    model = model_from_checkpoint({**state, "config": config})
    load_fitting(model, state["model"], path)
    return model.eval(), data


def run(cfg: DictConfig, run_dir: str | Path | None = None) -> dict:
    """Pretrains as ``cfg`` says, in ``run_dir`` (default: Hydra's run directory).

    Re-running with the same run directory resumes from ``checkpoints/last.pt``.
    Returns a summary: first and last logged loss, steps, counters, run_dir.
    """
    train: TrainSettings = instantiate(cfg.train, _convert_="all")
    data: DataSettings = instantiate(cfg.data, _convert_="all")
    optim: OptimSettings = instantiate(cfg.optim, _convert_="all")
    with task_session(train.device, train.precision, int(cfg.model.encoder.embed_dim)) as session:
        return _pretrain(cfg, open_training_run(cfg, run_dir, (train, data, optim), RESUME_FREE_KEYS, session))


def _pretrain(cfg: DictConfig, run: TrainingRun) -> dict:
    train, data = run.train, run.data
    device, context = run.session.device, run.session.context
    model = build_model(cfg, data).to(device)
    if train.fsdp and context.distributed:
        shard_model(model)

    train_records, val_records = data.records()
    run.logger.log("data_check", step=0, **check_list(train_records, data.train_list or "demo training list", None))
    plan = run.plan(model, train_records, instantiate(cfg.augment, _convert_="all"))
    if context.distributed:
        # Rank r holds videos r, r + W, ... of each global micro-batch, k clips each.
        k, per_rank = data.clips_per_video, train.batch_size
        rows = [(context.rank + j * context.world_size) * k + c for j in range(per_rank) for c in range(k)]
        model.partition_masks(per_rank * k * context.world_size, rows)

    # Reconstruction quality: the same clips and masks at every epoch end, so the numbers
    # of different epochs (and of runs with the same data) compare.
    score_clips, last_scores = None, {}
    # A sharded model (FSDP) gathers its weights in every forward, so every rank runs the
    # scoring forwards with the first; otherwise the first rank scores alone.
    scoring_ranks = context.is_main or (train.fsdp and context.distributed)
    if scoring_ranks and (int(cfg.recon_clips) or int(cfg.recon_every_epochs)):
        score_clips, unreadable = read_center_clips(val_records or train_records, data, max(int(cfg.recon_clips), 1))
        for entry in unreadable:
            log.warning("reconstruction preview: skipping unreadable video %s", entry)
        if score_clips is None:
            log.warning("reconstruction preview: no readable video in the first %d of the list; no pictures", len(unreadable))

    def score_reconstructions() -> bool:
        if score_clips is None or not int(cfg.recon_clips):
            return False
        clips = score_clips.to(device)
        mask = model.masking(clips.shape[0], model.encoder.grid, device=device, generator=torch.Generator(device).manual_seed(train.seed))
        last_scores.update(reconstruction_errors(model, clips, mask))
        return True

    def on_epoch_end(epoch: int) -> None:
        if not scoring_ranks:
            return
        if score_reconstructions() and context.is_main:
            run.logger.log("recon", step=trainer.step, epoch=epoch, **last_scores)
            log.info(
                "epoch %d: hidden-tubelet error %.4f (clip's mean colour %.4f, nearest visible tubelet %.4f)",
                epoch + 1, last_scores["hidden_mse"], last_scores["mean_colour_mse"], last_scores["nearest_visible_mse"],
            )  # fmt: skip
        every = int(cfg.recon_every_epochs)
        if score_clips is not None and every and (epoch + 1) % every == 0:
            picture = reconstruction_grid(reconstruct(model, score_clips[0], seed=train.seed))
            if context.is_main:
                save_png(picture, run.path / "reconstructions" / f"epoch_{epoch + 1:04d}.png", scale=2)
        run.curves.epoch_end()

    trainer = run.trainer(model, mae_loss, plan, TrainHooks(on_epoch_end=on_epoch_end))
    run.announce(plan, f"{len(train_records)} training videos")
    saved_state = run.folder.resume_from
    if saved_state is not None:
        trainer.resume(saved_state)
        if trainer.finished:
            log.info("this run is complete (%d epochs); nothing to do", trainer.epoch)
        else:
            log.info("resuming from %s: epoch %d, step %d", saved_state, trainer.epoch + 1, trainer.step)
    else:
        run.log_start(
            plan,
            {
                "parameters": sum(p.numel() for p in model.parameters()),
                "visible_tokens": model.masking.num_visible(model.encoder.grid),
                "tokens": model.encoder.num_patches,
            },
        )  # fmt: skip
    try:
        summary = trainer.fit()
    finally:
        run.logger.close()
    run.curves.final()
    if scoring_ranks and not last_scores:
        score_reconstructions()  # a finished run that was only reopened: score its final model
    summary = {**summary, "run_dir": str(run.path), "checkpoint": str(run.folder.last)}
    if last_scores:
        summary["reconstruction"] = dict(last_scores)
    return run.session.finish(run.path, summary)
