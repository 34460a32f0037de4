from pathlib import Path

import pytest

from video_mae.data.lists import DataListError, read_data_list


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_text_list_with_spaces_comments_and_relative_paths(tmp_path):
    path = write(
        tmp_path,
        "train.txt",
        "# a comment\n\nvideos/a b c.mp4 3\n/abs/clip.mp4   0\n  # indented comment\nvideos/d.mp4\t12\n",
    )
    records = read_data_list(path)
    assert [r.path for r in records] == [str(tmp_path / "videos/a b c.mp4"), "/abs/clip.mp4", str(tmp_path / "videos/d.mp4")]
    assert [r.label for r in records] == [3, 0, 12]
    assert [r.row for r in records] == [0, 1, 2]
    assert [r.line for r in records] == [3, 4, 6]


def test_root_overrides_the_list_folder(tmp_path):
    path = write(tmp_path, "l.txt", "x/y.mp4 1\n")
    assert read_data_list(path, root="/data/k400")[0].path == "/data/k400/x/y.mp4"


def test_csv_list_with_segments(tmp_path):
    path = write(tmp_path, "l.csv", 'label,path,start,end\n2,a.mp4,1.5,4\n0,"b, c.mp4",,\n')
    a, b = read_data_list(path)
    assert (a.label, a.start, a.end, a.line) == (2, 1.5, 4.0, 2)
    assert b.path == str(tmp_path / "b, c.mp4") and b.start is None and b.end is None


@pytest.mark.parametrize(
    "name,text,message",
    [
        ("l.txt", "a.mp4 1\nb.mp4 cat\n", r"l.txt:2: label 'cat' is not an integer"),
        ("l.txt", "a.mp4 1\n\nonlypath\n", r"l.txt:3: expected '<path> <label>'"),
        ("l.txt", "# c\na.mp4 -1\n", r"l.txt:2: label -1 is negative"),
        ("l.csv", "path,label\na.mp4,1\nb.mp4\n", r"l.csv:3: expected 2 columns"),
        ("l.csv", "path,label,start,end\na.mp4,1,5,2\n", r"l.csv:2: end 2.0 is not after start 5.0"),
        ("l.csv", "path,label,start\na.mp4,1,soon\n", r"l.csv:2: start 'soon' is not a number"),
        ("l.txt", "# only comments\n\n", r"l.txt: the data list has no entries"),
    ],
)
def test_errors_name_file_and_line(tmp_path, name, text, message):
    with pytest.raises(DataListError, match=message):
        read_data_list(write(tmp_path, name, text))


def test_missing_list(tmp_path):
    with pytest.raises(DataListError, match="data list not found"):
        read_data_list(tmp_path / "nope.txt")


def test_example_lists_in_the_repository_parse():
    folder = Path(__file__).resolve().parents[1] / "data_lists"
    text = read_data_list(folder / "example.txt", root="/data")
    csv = read_data_list(folder / "example.csv", root="/data")
    assert [r.path for r in text] == [r.path for r in csv]
    assert text[1].path == "/data/air drumming/05j4qqTfy6w.mp4" and csv[0].end == 9.0
