import av
import pytest
from conftest import TINY_DEMO, compose_config, tiny_overrides
from PIL import Image

from video_mae.cli import visualize
from video_mae.data.demo import DemoSpec, ensure_demo_dataset
from video_mae.data.lists import read_data_list
from video_mae.tasks.pretrain import run


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, demo_cache):
    run_dir = tmp_path_factory.mktemp("vis_run")
    run(compose_config("pretrain", tiny_overrides(demo_cache) + ["train.epochs=1"]), run_dir)
    return run_dir / "checkpoints" / "last.pt"


def demo_video(demo_cache):
    spec = DemoSpec(cache_dir=str(demo_cache), **TINY_DEMO)
    return read_data_list(ensure_demo_dataset(spec).val_list)[0].path


def test_visualize_writes_png_gif_and_mp4(checkpoint, demo_cache, tmp_path, capsys):
    video = demo_video(demo_cache)
    code = visualize([str(checkpoint), video, "--out", str(tmp_path), "--formats", "png,gif,mp4", "--scale", "2"])
    assert code == 0
    stem = tmp_path / "0000_recon"
    grid = Image.open(f"{stem}.png")
    assert grid.size == ((8 * 32 + 7 * 2) * 2, (3 * 32 + 2 * 2) * 2)  # 8 frames x 3 rows, scale 2
    gif = Image.open(f"{stem}.gif")
    assert gif.n_frames == 8 and gif.size == ((3 * 32 + 2 * 2) * 2, 32 * 2)
    with av.open(f"{stem}.mp4") as container:
        assert container.streams.video[0].frames == 8
    assert f"{stem}.png" in capsys.readouterr().out


def test_visualize_reports_bad_input(checkpoint, tmp_path, capsys):
    assert visualize([str(checkpoint), str(tmp_path / "missing.mp4"), "--out", str(tmp_path)]) == 2
    assert "missing: file not found" in capsys.readouterr().err
    assert visualize([str(tmp_path / "nope.pt"), str(tmp_path / "x.mp4")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        visualize([str(checkpoint), "x.mp4", "--formats", "bmp"])


def test_mask_ratio_override(checkpoint, demo_cache, tmp_path):
    assert visualize([str(checkpoint), demo_video(demo_cache), "--out", str(tmp_path), "--mask-ratio", "0.5", "--formats", "png"]) == 0
    assert (tmp_path / "0000_recon.png").is_file()
