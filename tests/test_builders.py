"""vmae-data build-list on small fake annotation files (video files are empty placeholders:
the builders only look them up)."""

import json
from pathlib import Path

import pytest

from video_mae.cli import data_tool
from video_mae.data.lists import read_data_list


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def build(*args: str) -> int:
    return data_tool(["build-list", *args])


def test_kinetics(tmp_path, capsys):
    csv = tmp_path / "train.csv"
    csv.write_text(
        "label,youtube_id,time_start,time_end,split\nzumba,abc,10,20,train\nabseiling,def,0,10,train\nabseiling,ghi,5,15,train\n"
    )
    touch(tmp_path / "videos" / "zumba" / "abc_000010_000020.mp4")
    touch(tmp_path / "videos" / "abseiling" / "def_000000_000010.mp4")
    out = tmp_path / "lists" / "train.txt"
    assert build("kinetics", "--annotations", str(csv), "--videos", str(tmp_path / "videos"), "--out", str(out)) == 0
    records = read_data_list(out)
    assert [(Path(r.path).name, r.label) for r in records] == [("abc_000010_000020.mp4", 1), ("def_000000_000010.mp4", 0)]
    assert (tmp_path / "lists" / "classes.txt").read_text() == "abseiling\nzumba\n"
    captured = capsys.readouterr()
    assert "1 annotated videos not found" in captured.err and "ghi_000005_000015" in captured.err
    assert build("kinetics", "--annotations", str(csv), "--videos", str(tmp_path / "videos"), "--out", str(out), "--strict") == 1


def test_kinetics_val_follows_the_train_classes(tmp_path):
    (tmp_path / "classes.txt").write_text("abseiling\nbowling\nzumba\n")
    csv = tmp_path / "val.csv"
    csv.write_text("label,youtube_id,time_start,time_end,split\nzumba,x,1,11,val\n")
    touch(tmp_path / "v" / "x_000001_000011.mp4")
    assert build("kinetics", "--annotations", str(csv), "--videos", str(tmp_path / "v"), "--out", str(tmp_path / "val.txt")) == 0
    assert read_data_list(tmp_path / "val.txt")[0].label == 2


def test_kinetics_errors_name_file_and_line(tmp_path, capsys):
    csv = tmp_path / "bad.csv"
    csv.write_text("label,youtube_id,time_start,time_end\nzumba,abc,ten,20\n")
    (tmp_path / "v").mkdir()
    assert build("kinetics", "--annotations", str(csv), "--videos", str(tmp_path / "v"), "--out", str(tmp_path / "o.txt")) == 2
    assert f"{csv}:2: time_start/time_end must be numbers" in capsys.readouterr().err


def test_ssv2(tmp_path):
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"Pushing something from left to right": "1", "Holding something": "0"}))
    train = tmp_path / "train.json"
    train.write_text(json.dumps([
        {"id": "11", "template": "Pushing [something] from left to right", "label": "pushing a cup from left to right"},
        {"id": "12", "template": "Holding [something]", "label": "holding a pen"},
    ]))  # fmt: skip
    touch(tmp_path / "videos" / "11.webm")
    touch(tmp_path / "videos" / "12.webm")
    out = tmp_path / "train.txt"
    assert (
        build("ssv2", "--annotations", str(train), "--label-map", str(labels), "--videos", str(tmp_path / "videos"), "--out", str(out)) == 0
    )
    assert [(Path(r.path).name, r.label) for r in read_data_list(out)] == [("11.webm", 1), ("12.webm", 0)]
    assert (tmp_path / "classes.txt").read_text().splitlines() == ["Holding something", "Pushing something from left to right"]


def test_ucf101_train_and_test_lists(tmp_path):
    (tmp_path / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 Archery\n")
    (tmp_path / "trainlist01.txt").write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\nArchery/v_Archery_g08_c01.avi 2\n")
    (tmp_path / "testlist01.txt").write_text("Archery/v_Archery_g01_c01.avi\n")
    for name in ("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", "Archery/v_Archery_g08_c01.avi", "Archery/v_Archery_g01_c01.avi"):
        touch(tmp_path / "UCF-101" / name)
    common = ["--label-map", str(tmp_path / "classInd.txt"), "--videos", str(tmp_path / "UCF-101")]
    assert build("ucf101", "--annotations", str(tmp_path / "trainlist01.txt"), *common, "--out", str(tmp_path / "l" / "train1.txt")) == 0
    assert build("ucf101", "--annotations", str(tmp_path / "testlist01.txt"), *common, "--out", str(tmp_path / "l" / "test1.txt")) == 0
    assert [r.label for r in read_data_list(tmp_path / "l" / "train1.txt")] == [0, 1]
    assert [r.label for r in read_data_list(tmp_path / "l" / "test1.txt")] == [1]


def test_hmdb51_splits(tmp_path):
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "brush_hair_test_split1.txt").write_text("a.avi 1\nb.avi 2\nc.avi 0\n")
    (splits / "wave_test_split1.txt").write_text("d.avi 2\ne.avi 1\n")
    (splits / "wave_test_split2.txt").write_text("d.avi 1\ne.avi 2\n")
    for name in ("brush_hair/a.avi", "brush_hair/b.avi", "brush_hair/c.avi", "wave/d.avi", "wave/e.avi"):
        touch(tmp_path / "hmdb" / name)
    common = ["--annotations", str(splits), "--videos", str(tmp_path / "hmdb")]
    assert build("hmdb51", *common, "--split", "1", "--subset", "train", "--out", str(tmp_path / "l" / "train1.txt")) == 0
    assert build("hmdb51", *common, "--split", "1", "--subset", "test", "--out", str(tmp_path / "l" / "test1.txt")) == 0
    assert [(Path(r.path).name, r.label) for r in read_data_list(tmp_path / "l" / "train1.txt")] == [("a.avi", 0), ("e.avi", 1)]
    assert [(Path(r.path).name, r.label) for r in read_data_list(tmp_path / "l" / "test1.txt")] == [("b.avi", 0), ("d.avi", 1)]


def test_folder_tree(tmp_path):
    for name in ("dog/1.mp4", "dog/x/2.webm", "cat/3.mp4", "cat/notes.txt"):
        touch(tmp_path / "tree" / name)
    assert build("folder", "--videos", str(tmp_path / "tree"), "--out", str(tmp_path / "all.txt")) == 0
    assert [(Path(r.path).name, r.label) for r in read_data_list(tmp_path / "all.txt")] == [("3.mp4", 0), ("1.mp4", 1), ("2.webm", 1)]
    assert (tmp_path / "classes.txt").read_text() == "cat\ndog\n"


def test_missing_arguments_are_usage_errors(tmp_path):
    with pytest.raises(SystemExit):
        build("ssv2", "--annotations", "x.json", "--videos", str(tmp_path), "--out", str(tmp_path / "o.txt"))
