"""The config keys that do not change what a training task trains: the one list of them.

A resumed run may differ from its ``config.yaml`` in these keys (``open_run_dir``), and the
run folder's name leaves them out (``conf/pretrain.yaml`` and ``conf/finetune.yaml`` set
``hydra.job.config.override_dirname.exclude_keys: ${vmae_run_name_free_keys:<task>}``), so a
run can be resumed on another device, with other workers or other logging. ``train.epochs``
is the exception: a resume may raise it, but it names a different run (another schedule).

Plain data, no torch: ``video_mae.cli.register_resolvers`` imports it before Hydra composes.
"""

from __future__ import annotations

_TRAIN = (
    "train.resume",
    "train.device",
    "train.progress_bar",
    "train.tensorboard",
    "train.wandb",
    "train.log_every",
    "train.save_every_steps",
    "train.save_every_epochs",
    "train.max_nonfinite_in_row",
)
_DATA = (
    "data.num_workers",
    "data.pin_memory",
    "data.timeout_s",
    "data.decode_timeout_s",
    "data.cache_decoded",
    "data.demo.cache_dir",
)

# Per task: the keys left out of the run folder's name.
RUN_NAME_FREE_KEYS: dict[str, tuple[str, ...]] = {
    "pretrain": (*_TRAIN, "recon_every_epochs", "recon_clips", *_DATA),
    "finetune": (
        *_TRAIN, *_DATA,
        "eval.batch_size", "eval.clips_per_forward", "eval.num_clips", "eval.num_crops", "eval.short_side", "eval.use_ema",
    ),
}  # fmt: skip


def run_name_free_keys(task: str) -> list[str]:
    """The keys the run folder's name of ``task`` (pretrain | finetune) leaves out; the
    configs' resolver ``vmae_run_name_free_keys``."""
    return list(RUN_NAME_FREE_KEYS[task])


def resume_free_keys(task: str) -> tuple[str, ...]:
    """The keys a resumed run of ``task`` may change: those, and ``train.epochs``."""
    return ("train.epochs", *RUN_NAME_FREE_KEYS[task])
