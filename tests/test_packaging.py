"""The package ships its configs and lists every sub-package."""

import configparser
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_setup_cfg_lists_every_subpackage():
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    listed = set(parser["options"]["packages"].split())
    found = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "video_mae").rglob("__init__.py")
        if "__pycache__" not in path.parts
    }
    assert found | {"video_mae.conf"} == listed


def test_configs_are_reachable_as_package_data():
    shipped = resources.files("video_mae.conf")
    on_disk = sorted(p.relative_to(ROOT / "conf").as_posix() for p in (ROOT / "conf").rglob("*.yaml"))
    assert on_disk
    for name in on_disk:
        assert shipped.joinpath(name).is_file(), name
