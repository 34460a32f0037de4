"""Console entry points: the Hydra apps here, one module per other command (vmae_<name>.py).

The Hydra apps read their configs from the package ``video_mae.conf`` (the
repository's ``conf/`` folder), so they work from any directory and however the
package was installed; users add their own config folders with ``--config-dir``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports Hydra and OmegaConf only once a command runs (fast config errors)
    from omegaconf import DictConfig

CONFIG_PATH = "pkg://video_mae.conf"


# What a run folder's name may hold: characters that survive both a shell unquoted and a
# Hydra override value, so that `checkpoint=runs/pretrain/<name>/checkpoints/last.pt` can be
# typed back exactly as `ls` shows it.
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")
_MAPPED = str.maketrans({"=": "-", ",": "_", "/": "_", "\\": "_"})


def run_name(override_dirname: str) -> str:
    """A run directory name from Hydra's ``override_dirname`` (the command's overrides,
    ``key=value`` joined by commas; 'default' without any). ``=`` becomes ``-``, ``,``
    and path separators ``_``, anything else outside letters, digits and ``._+-`` ``_``;
    when that drops information (quotes, brackets, spaces), or the name is too long, a
    digest of the overrides keeps different commands apart. The same command always gives
    the same name, so re-running it resumes."""
    if not override_dirname:
        return "default"
    mapped = override_dirname.translate(_MAPPED)
    name = _UNSAFE.sub("_", mapped).strip(".") or "_"
    lossy = name != mapped
    if lossy or len(name) > 120:
        digest = hashlib.sha1(override_dirname.encode()).hexdigest()[:10]
        name = f"{name[:100]}-{digest}"
    return name


# Keys whose values are paths: a path that exists is passed to Hydra quoted when it holds
# characters Hydra's override grammar gives a meaning to (a run folder of an older version
# named `a=1,b=2`, a file with a space).
PATH_KEYS = ("checkpoint", "pretrained", "list", "data.train_list", "data.val_list", "data.root", "root")
_GRAMMAR = re.compile(r"[=,\s\[\]{}()'\"\\:$*?]")


def quote_path_overrides(argv: list[str]) -> list[str]:
    """``argv`` with ``key=<existing path>`` quoted for Hydra where the path needs it."""
    out = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and key.lstrip("+") in PATH_KEYS and _GRAMMAR.search(value) and "'" not in value:
            if not (value[:1] in "'\"" and value[-1:] == value[:1]) and os.path.exists(os.path.expanduser(value)):
                arg = f"{key}='{value}'"
        out.append(arg)
    return out


# What a finished run folder may hold that a user looks at next, in that order.
_RESULTS = (
    ("checkpoint", "checkpoints/best.pt"), ("checkpoint", "checkpoints/last.pt"), ("metrics", "metrics.json"),
    ("curves", "curves.png"), ("reconstructions", "reconstructions"), ("confusion matrix", "confusion_matrix.png"),
    ("embeddings", "embeddings.npy"), ("log", "log.jsonl"),
)  # fmt: skip


def closing_lines(prog: str, summary: dict, seconds: float) -> str:
    """The human end of a run (the JSON summary above it is for scripts): wall time, the
    headline numbers, and where the results lie."""
    minutes, secs = divmod(int(round(seconds)), 60)
    numbers = []
    for key, name in (("best_val_top1", "best val top-1"), ("top1", "top-1"), ("last_loss", "last loss")):
        if isinstance(summary.get(key), (int, float)):
            numbers.append(f"{name} {summary[key]:.4g}")
    test = summary.get("test")
    if isinstance(test, dict) and isinstance(test.get("top1"), (int, float)):
        numbers.append(f"test top-1 {test['top1']:.4g}")
    recon = summary.get("reconstruction")
    if isinstance(recon, dict) and isinstance(recon.get("hidden_mse"), (int, float)):
        numbers.append(f"hidden-tubelet error {recon['hidden_mse']:.4f} (mean colour {recon.get('mean_colour_mse', float('nan')):.4f})")
    lines = [f"{prog}: done in {minutes}:{secs:02d}" + (f"; {', '.join(numbers)}" if numbers else "")]
    run_dir = summary.get("run_dir")
    if run_dir:
        seen = set()
        for label, relative in _RESULTS:
            path = os.path.join(run_dir, relative)
            if label not in seen and os.path.exists(path):
                seen.add(label)
                lines.append(f"  {label}: {path}")
    return "\n".join(lines)


def register_resolvers() -> None:
    """The resolvers the configs use. ``video_mae.conf`` calls this when Hydra imports it
    (before any compose); the apps and tests call it too (it is idempotent)."""
    from omegaconf import OmegaConf

    from ..tasks.resume_free import run_name_free_keys

    if not OmegaConf.has_resolver("vmae_run_name"):
        OmegaConf.register_new_resolver("vmae_run_name", run_name)
    if not OmegaConf.has_resolver("vmae_run_name_free_keys"):
        OmegaConf.register_new_resolver("vmae_run_name_free_keys", run_name_free_keys)


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors caused by input (configs, lists, videos, checkpoints): reported in one
    line that names the file/line/key, without a traceback."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from ..checkpoint import CheckpointError
    from ..data.dataset import TooManyBadVideos
    from ..data.lists import DataListError
    from ..engine.train import NonFiniteLossError
    from ..models.pretrained import PretrainedMismatch
    from ..tasks.run_lock import RunFolderLocked

    return (
        ValueError,
        FileExistsError,
        DataListError,
        CheckpointError,
        TooManyBadVideos,
        NonFiniteLossError,
        PretrainedMismatch,
        RunFolderLocked,
        HydraException,
        OmegaConfBaseException,
    )


# Config sections whose settings classes import no torch: checked before the task is
# imported, so that a value of the wrong type or out of range is reported in a second.
SETTINGS_SECTIONS = ("train", "optim", "eval", "data")


def check_settings(cfg: DictConfig) -> None:
    """Builds the plain settings of ``cfg``'s light sections, which validate themselves."""
    from hydra.utils import instantiate

    for key in SETTINGS_SECTIONS:
        section = cfg.get(key)
        if section is not None and "_target_" in section:
            instantiate(section, _convert_="all")


def _fail(prog: str, message: str) -> None:
    print(f"{prog}: error: {message.strip().replace(chr(10), '; ')}", file=sys.stderr)
    print(f"{prog}: (set HYDRA_FULL_ERROR=1 for the traceback)", file=sys.stderr)
    sys.exit(2)


def _hydra_app(config_name: str, task_module: str):
    """The console entry of one task: Hydra composes the config, then ``task_module.run``
    gets it. The task (torch, timm) is imported only after composition, so that a config
    error is reported in about a second instead of after the heavy imports."""
    import hydra

    register_resolvers()
    prog = {"evaluate": "vmae-eval"}.get(config_name, f"vmae-{config_name}")
    # The user's own HYDRA_FULL_ERROR=1 keeps every traceback. Otherwise we set it, so that
    # Hydra hands its own errors (a bad override, an unwritable run folder) to us instead
    # of printing them itself, and report them in one line like the task's errors.
    user_full_error = os.environ.get("HYDRA_FULL_ERROR") == "1"

    def main(cfg: DictConfig) -> None:
        import importlib
        import time

        from hydra.errors import HydraException
        from omegaconf.errors import OmegaConfBaseException

        try:
            check_settings(cfg)
        except (ValueError, TypeError, HydraException, OmegaConfBaseException) as err:
            if user_full_error:
                raise
            from .config_errors import describe_error

            _fail(prog, describe_error(err))
        task = importlib.import_module(task_module).run
        started = time.perf_counter()
        try:
            summary = task(cfg)
        except _user_errors() as err:
            if user_full_error:
                raise
            from .config_errors import describe_error

            _fail(prog, describe_error(err))
        if os.environ.get("RANK", "0") == "0":  # under torchrun, the main process reports
            print(json.dumps(summary, indent=1))
            print(closing_lines(prog, summary, time.perf_counter() - started), file=sys.stderr)

    if os.environ.get("RANK", "0") != "0" or os.environ.get("SLURM_PROCID", "0") != "0":
        # Under torchrun / srun only the first process writes: the others keep Hydra's
        # .hydra/ folder and log file out of the run directory.
        sys.argv += ["hydra.output_subdir=null", "hydra/job_logging=stdout"]
    sys.argv[1:] = quote_path_overrides(sys.argv[1:])
    app = hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name=config_name)(main)

    def entry() -> None:
        from hydra.errors import HydraException
        from omegaconf.errors import OmegaConfBaseException

        os.environ["HYDRA_FULL_ERROR"] = "1"
        try:
            app()
        except (HydraException, OmegaConfBaseException) as err:
            if user_full_error:
                raise
            from .config_errors import describe_config_error

            _fail(prog, describe_config_error(err, config_name, CONFIG_PATH))
        except OSError as err:  # e.g. a full disk while Hydra writes .hydra/ into the run folder
            if user_full_error:
                raise
            _fail(prog, f"{err.strerror or err} ({err.filename or 'the run folder'}); nothing was trained")

    return entry


def pretrain() -> None:
    """vmae-pretrain: masked-autoencoder pretraining (a Hydra app)."""
    _hydra_app("pretrain", "video_mae.tasks.pretrain")()


def finetune() -> None:
    """vmae-finetune: fine-tuning or probing for action recognition (a Hydra app)."""
    _hydra_app("finetune", "video_mae.tasks.finetune")()


def evaluate() -> None:
    """vmae-eval: multi-view evaluation of a fine-tuned checkpoint (a Hydra app)."""
    _hydra_app("evaluate", "video_mae.tasks.evaluate")()


def extract() -> None:
    """vmae-extract: clip and video embeddings for a data list (a Hydra app)."""
    _hydra_app("extract", "video_mae.tasks.extract")()


# The argparse commands, each in its own module, re-exported for the console scripts.
from .vmae_bench import bench  # noqa: E402
from .vmae_convert import convert  # noqa: E402
from .vmae_data import data_tool  # noqa: E402
from .vmae_retrieve import retrieve  # noqa: E402
from .vmae_sweep import sweep  # noqa: E402
from .vmae_visualize import visualize  # noqa: E402

__all__ = [
    "bench", "convert", "data_tool", "evaluate", "extract", "finetune", "pretrain", "register_resolvers",
    "retrieve", "run_name", "sweep", "visualize",
]  # fmt: skip
