"""Multi-view evaluation of a fine-tuned checkpoint (``vmae-eval``)."""

from __future__ import annotations

import logging
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ..checkpoint import load_checkpoint
from ..data.dataset import BadVideoLog
from ..data.list_check import check_list
from ..data.lists import read_data_list
from ..data.settings import DataSettings
from ..engine.evaluate import EvalSettings, evaluate_videos
from ..models.key_check import load_fitting
from ..run_files import RunFiles
from .finetune import build_classifier
from .run_dir import hydra_output_dir
from .session import task_session

log = logging.getLogger(__name__)

# Keys of the trained run's data config that an evaluation may replace.
DATA_OVERRIDES = ("root", "num_workers", "reader", "sampling", "sampling_rate", "decode_timeout_s")


def run(cfg: DictConfig, run_dir: str | Path | None = None) -> dict:
    """Evaluates ``cfg.checkpoint`` on ``cfg.list`` (default: the run's validation list)
    with the run's data settings and eval protocol, each overridable; writes
    ``metrics.json``, ``predictions.csv`` and the confusion matrix to the run directory."""
    out_dir = Path(run_dir) if run_dir is not None else hydra_output_dir()
    state = load_checkpoint(cfg.checkpoint)
    spec = state.get("extras", {}).get("classifier")
    if spec is None:
        raise ValueError(
            f"{cfg.checkpoint} is not a vmae-finetune checkpoint (no classifier); evaluate best.pt or last.pt of a fine-tuning run"
        )
    trained = OmegaConf.create(state["config"])
    for key in DATA_OVERRIDES:
        if cfg.get(key) is not None:
            trained.data[key] = cfg[key]
    data: DataSettings = instantiate(trained.data, _convert_="all")
    overrides = {key: value for key, value in OmegaConf.to_container(cfg.eval).items() if value is not None}
    settings: EvalSettings = instantiate(OmegaConf.merge(trained.eval, overrides), _convert_="all")

    if cfg.list is not None:
        records = read_data_list(cfg.list, data.root)
        source = str(cfg.list)
    elif data.val_list is not None:
        records = read_data_list(data.val_list, data.root)
        source = data.val_list
    else:
        _, records = data.records()  # the demo's validation list
        source = "demo validation list"
        if not records:
            raise ValueError("no list to evaluate: give list=<data list>")

    check_list(records, source, spec["num_classes"])
    files = RunFiles(out_dir)
    with task_session(cfg.device, cfg.precision, int(trained.model.encoder.embed_dim)) as session:
        model = build_classifier(trained, spec["num_classes"], spec["pos_embed_grid"])
        if settings.use_ema:
            if "ema" not in state["extras"]:
                raise ValueError(f"eval.use_ema=true but {cfg.checkpoint} holds no EMA weights")
            load_fitting(model, state["extras"]["ema"], f"{cfg.checkpoint} (EMA weights)")
        else:
            load_fitting(model, state["model"], str(cfg.checkpoint))
        model.to(session.device)
        main = session.context.is_main
        if main:
            out_dir.mkdir(parents=True, exist_ok=True)
            log.info("evaluating %s on %s (%d videos, %d x %d views) on %d process(es)", cfg.checkpoint, source,
                     len(records), settings.num_clips, settings.num_crops, session.context.world_size)  # fmt: skip
        metrics = evaluate_videos(
            model, records, data, settings, session.device, session.precision, spec["class_names"],
            context=session.context, out_dir=out_dir if main else None, bad_videos=BadVideoLog(files.bad_videos),
        )  # fmt: skip
        views = [settings.num_clips, settings.num_crops]
        summary = {**metrics, "checkpoint": str(cfg.checkpoint), "list": source, "views": views, "out_dir": str(out_dir)}
        return session.finish(out_dir, summary)
