"""The README's commands run exactly as written, one after the other, on a stand-in demo.

Every command line of the README's ``bash`` blocks and its Python API block is either run
here (in README order, in one working folder, so each command finds what the earlier ones
wrote) or listed in SKIPPED with the reason. A new README command that is neither fails
the test, so the README cannot drift from the code. The stand-in: the default demo's cache
folder filled with 1 video per class and split instead of 250/40/10/30, so that the
default recipes run in seconds; everything else (models, recipes, epochs) is the default.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from video_mae.data.demo import DemoSpec, dataset_name, ensure_demo_dataset

README = Path(__file__).resolve().parents[1] / "README.md"

# Lines not run, each with why (matched as substrings of the command line).
SKIPPED = {
    'pip install -e ".[test]"': "the set-up this test runs in",
    "pytest": "this suite",
    "vmae-bench learning": "a 45-minute benchmark (tests/test_bench.py runs it on a tiny demo)",
    "runs/learning/pretrain": "needs the benchmark's pretraining",
    "vmae-retrieve runs/emb/train --queries runs/emb/test": "needs the benchmark's pretraining",
    "kinetics": "needs the Kinetics download",
    "ssv2": "needs the Something-Something download",
    "ucf101": "needs the UCF101 download",
    "hmdb51": "needs the HMDB51 download",
    "k400": "needs the Kinetics download",
    "lists/ucf": "needs the UCF101 download",
    "videomae-base/": "needs a Hugging Face download",
    "checkpoint.pth": "needs an official checkpoint download",
    "weights/": "needs converted released weights",
    "runs/finetune/.../": "a placeholder path",
    "torchrun": "needs GPUs (tests/test_distributed.py runs torchrun on the CPU)",
    "hydra/launcher=slurm": "needs a SLURM cluster",
    "vmae-bench models": "a GPU benchmark (tests/test_bench.py runs it on tiny shapes)",
    "vmae-bench cost": "a benchmark of minutes (tests/test_bench.py runs it on tiny shapes)",
    "tools/": "a script of the source tree, not of the installed package",
    "hydra.run.dir=runs/plain": "feeds only the tools/ script below (tests/test_pretrain.py runs it)",
    "hydra.run.dir=runs/dm05": "feeds only the tools/ script below (tests/test_decoder_masking.py covers decoder masking)",
    "hydra.run.dir=runs/finetune/scratch": "the line above without pretrained= (test time; test_finetune.py trains from scratch)",
}


def readme_commands() -> list[tuple[str, str]]:
    """(language, command) in README order: bash lines (continuations joined) and whole python blocks."""
    commands, language, block = [], None, []
    for line in README.read_text(encoding="utf-8").splitlines():
        fence = re.match(r"^```(\w*)\s*$", line)
        if fence and language is None:
            language, block = fence.group(1), []
            continue
        if fence:
            if language == "python":
                commands.append(("python", "\n".join(block)))
            elif language == "bash":
                joined = "\n".join(block).replace("\\\n", " ")
                commands += [("bash", c.strip()) for c in joined.splitlines() if c.strip() and not c.strip().startswith("#")]
            language = None
            continue
        if language is not None:
            block.append(line)
    return commands


def skip_reason(command: str) -> str | None:
    for pattern, reason in SKIPPED.items():
        if pattern == command or (pattern not in ("pytest",) and pattern in command):
            return reason
    return None


def test_every_readme_command_is_run_or_skipped_for_a_reason():
    commands = readme_commands()
    assert any(c.startswith("vmae-pretrain") for _, c in commands)
    for language, command in commands:
        if language == "bash":
            assert command.startswith(("vmae-", "pip ", "pytest", "python ", "torchrun")), f"unknown kind of README command: {command}"
    used = {p for p in SKIPPED if any(skip_reason(c) and (p == c or p in c) for _, c in commands)}
    assert used == set(SKIPPED), f"skip patterns no README command needs any more: {set(SKIPPED) - used}"


@pytest.fixture()
def workspace(tmp_path) -> tuple[Path, dict]:
    """A working folder and HOME whose default demo cache holds the stand-in dataset, and
    the video files the README's commands name."""
    home = tmp_path / "home"
    cache = home / ".cache" / "video_mae"
    small = ensure_demo_dataset(DemoSpec(cache_dir=str(tmp_path / "gen"), unlabelled_videos_per_class=1, videos_per_class=1,
                                         val_videos_per_class=1, test_videos_per_class=1))  # fmt: skip
    cache.mkdir(parents=True)
    shutil.copytree(small.root, cache / dataset_name(DemoSpec()))
    work = tmp_path / "work"
    work.mkdir()
    videos = sorted(small.root.glob("val/*/*.mp4"))
    for name, source in zip(("my_video.mp4", "my_clip.mp4", "a.mp4", "b.mp4", "clip.mp4"), videos):
        shutil.copy(source, work / name)
    for i, source in enumerate(videos[:4]):
        (work / "my_videos" / f"class_{i % 2}").mkdir(parents=True, exist_ok=True)
        shutil.copy(source, work / "my_videos" / f"class_{i % 2}" / f"{i}.mp4")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HYDRA_", "VMAE_", "XDG_CACHE"))}
    env.update(HOME=str(home), PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    return work, env


def test_the_readme_runs_as_written(workspace):
    work, env = workspace
    ran = []
    for language, command in readme_commands():
        if skip_reason(command) is not None:
            continue
        if language == "python":
            if "pipeline(" in command:
                continue  # needs the export above; tests/test_hostile.py runs the pipeline on an export
            args = [sys.executable, "-c", command]
        else:
            args = ["bash", "-c", command]
        result = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"README command failed: {command}\n{result.stderr[-3000:]}"
        assert "Traceback" not in result.stderr, f"{command}\n{result.stderr[-3000:]}"
        ran.append(command)
    assert len(ran) >= 12, ran
    assert (work / "runs" / "pretrain" / "default" / "checkpoints" / "last.pt").is_file()
    assert (work / "runs" / "emb" / "results.csv").is_file() and (work / "lists" / "mine.txt").is_file()
