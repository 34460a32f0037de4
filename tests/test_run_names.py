"""Run folder names can be typed back: into a shell unquoted, and into a Hydra override."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from conftest import console_command, tiny_finetune_overrides, tiny_overrides

from video_mae.cli import quote_path_overrides, run_name

SAFE = re.compile(r"^[A-Za-z0-9._+-]+$")


def test_names_hold_only_safe_characters_and_stay_apart():
    commands = [
        "", "mask.ratio=0.5,train.epochs=1", "pretrained=runs/pretrain/default/checkpoints/last.pt",
        "pretrained='runs/a=b/last.pt'", "x=[1,2]", "x=[1_2]", "x='a b'", "x='a_b'", "model=vit_s,train.epochs=-1",
        "k=" + "v" * 300,
    ]  # fmt: skip
    names = [run_name(c) for c in commands]
    assert all(SAFE.match(n) and len(n) <= 120 for n in names), names
    assert len(set(names)) == len(names)
    assert names[0] == "default" and names[1] == "mask.ratio-0.5_train.epochs-1"
    assert run_name(commands[2]) == names[2]  # a function of the command: re-running resumes


def test_existing_paths_with_grammar_characters_are_quoted(tmp_path):
    odd = tmp_path / "a=1,b=2"
    odd.mkdir()
    argv = [f"checkpoint={odd}", "train.epochs=3", f"pretrained={tmp_path}/missing=x", f"list='{odd}'"]
    assert quote_path_overrides(argv) == [f"checkpoint='{odd}'", "train.epochs=3", f"pretrained={tmp_path}/missing=x", f"list='{odd}'"]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    result = console_command(*args, cwd=cwd, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_a_run_folder_is_passed_back_as_listed(tmp_path, demo_cache):
    # Pretrain with overrides, then fine-tune from the folder exactly as `ls` names it.
    run("vmae-pretrain", *tiny_overrides(demo_cache), "train.epochs=1", "recon_every_epochs=0", "mask.ratio=0.5", cwd=tmp_path)
    (folder,) = [p for p in (tmp_path / "runs" / "pretrain").iterdir()]
    assert SAFE.match(folder.name)
    checkpoint = f"runs/pretrain/{folder.name}/checkpoints/last.pt"
    run(
        "vmae-finetune",
        *tiny_finetune_overrides(demo_cache),
        f"pretrained={checkpoint}",
        "train.epochs=1",
        "eval.num_clips=1",
        cwd=tmp_path,
    )
    (ft,) = [p for p in (tmp_path / "runs" / "finetune").iterdir()]
    assert SAFE.match(ft.name) and (ft / "checkpoints" / "best.pt").is_file()
    # A folder named by an older version (with '=' and ','), typed unquoted.
    old = tmp_path / "runs" / "finetune-old" / "pretrained=x,train.epochs=1"
    shutil.copytree(ft, old)
    run("vmae-eval", f"checkpoint={old}/checkpoints/best.pt", "num_workers=0", cwd=tmp_path)
    (ev,) = [p for p in (tmp_path / "runs" / "eval").iterdir()]
    assert SAFE.match(ev.name) and (ev / "metrics.json").is_file()
