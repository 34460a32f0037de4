"""The run directory of a task: where it is, what it held before, whether to resume."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ..run_files import RunFiles
from .run_lock import lock_run_folder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunDir(RunFiles):
    """An opened run folder: its files, the resolved config and where a resume starts."""

    config: dict  # the resolved config as plain containers
    resume_from: Path | None  # checkpoints/last.pt when continuing a run


def hydra_output_dir() -> Path:
    from hydra.core.hydra_config import HydraConfig  # only when no run_dir is given: callers outside a Hydra app never need it

    return Path(HydraConfig.get().runtime.output_dir)


def _flatten(config: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def config_changes(saved: dict, current: dict) -> list[str]:
    """Dotted keys whose values differ between two plain configs."""
    old, new = _flatten(saved), _flatten(current)
    return sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key))


def remove_partial_checkpoints(folder: Path) -> None:
    """Deletes ``.<name>.*.tmp`` files: checkpoints whose write a kill interrupted (the
    previous checkpoint they were to replace is intact). Call only while holding the lock:
    a live run's save in progress looks the same."""
    if not folder.is_dir():
        return
    for partial in folder.glob(".*.tmp"):
        log.info("removing %s, a checkpoint whose write was interrupted", partial)
        partial.unlink(missing_ok=True)


def open_run_dir(cfg: DictConfig, run_dir: str | Path | None, resume: bool, free_keys: Iterable[str], write: bool = True) -> RunDir:
    """Creates the run directory (default: Hydra's), decides whether this is a resume
    and writes the resolved ``config.yaml``.

    The main process first takes the folder's lock (``run_lock``: a second command in
    the same folder stops with a message naming the holder) and removes the partial
    checkpoints a kill during a save left. A directory with ``checkpoints/last.pt`` is resumed, unless ``resume`` is off
    (then it is an error: nothing already written is overwritten), or unless its
    ``config.yaml`` differs from ``cfg`` in keys other than ``free_keys`` (an error
    naming them). ``write=False`` (ranks other than the main one) checks only.
    """
    files = RunFiles(Path(run_dir) if run_dir is not None else hydra_output_dir())
    path, last = files.path, files.last
    config = OmegaConf.to_container(cfg, resolve=True)
    if write:
        lock_run_folder(path)
        remove_partial_checkpoints(files.checkpoints)
    resume_from = None
    if last.is_file():
        if not resume:
            raise FileExistsError(
                f"{last} exists and train.resume=false; pick another hydra.run.dir, or set train.resume=true to continue that run"
            )
        resume_from = last
        previous = files.config_file
        if previous.is_file():
            saved = OmegaConf.to_container(OmegaConf.load(previous), resolve=True)
            free = set(free_keys)
            changed = [key for key in config_changes(saved, config) if key not in free]
            if changed:
                raise ValueError(
                    f"{path} holds a run with a different config ({', '.join(changed[:8])}); "
                    "resume it with the same settings, or choose another hydra.run.dir"
                )
    if write:
        path.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(OmegaConf.create(config), files.config_file)
    return RunDir(path=path, config=config, resume_from=resume_from)


def write_summary(folder: Path, summary: dict) -> None:
    """Writes ``folder/summary.json``. A key this process left empty (None) keeps the value
    an earlier write of the same run held: re-opening a finished run must not erase it."""
    path = RunFiles(Path(folder)).summary
    merged = dict(summary)
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = {}
    if isinstance(previous, dict):
        for key, value in previous.items():
            if merged.get(key) is None and value is not None:
                merged[key] = value
    path.write_text(json.dumps(merged, indent=1) + "\n", encoding="utf-8")
