"""The run directory of a task: where it is, what it held before, whether to resume."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf


@dataclass(frozen=True)
class RunDir:
    path: Path
    config: dict  # the resolved config as plain containers
    resume_from: Path | None  # checkpoints/last.pt when continuing a run

    @property
    def last(self) -> Path:
        return self.path / "checkpoints" / "last.pt"


def hydra_output_dir() -> Path:
    from hydra.core.hydra_config import HydraConfig

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


def open_run_dir(
    cfg: DictConfig, run_dir: str | Path | None, resume: bool, free_keys: Iterable[str], write: bool = True
) -> RunDir:
    """Creates the run directory (default: Hydra's), decides whether this is a resume
    and writes the resolved ``config.yaml``.

    A directory with ``checkpoints/last.pt`` is resumed, unless ``resume`` is off
    (then it is an error: nothing already written is overwritten), or unless its
    ``config.yaml`` differs from ``cfg`` in keys other than ``free_keys`` (an error
    naming them). ``write=False`` (ranks other than the main one) checks only.
    """
    path = Path(run_dir) if run_dir is not None else hydra_output_dir()
    config = OmegaConf.to_container(cfg, resolve=True)
    last = path / "checkpoints" / "last.pt"
    resume_from = None
    if last.is_file():
        if not resume:
            raise FileExistsError(
                f"{last} exists and train.resume=false; pick another hydra.run.dir, "
                "or set train.resume=true to continue that run"
            )
        resume_from = last
        previous = path / "config.yaml"
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
        OmegaConf.save(OmegaConf.create(config), path / "config.yaml")
    return RunDir(path=path, config=config, resume_from=resume_from)
