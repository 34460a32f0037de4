#!/usr/bin/env python
"""Generate a built-in demo dataset into a folder of your choice and print its lists.

    python tools/make_demo_dataset.py --out /tmp/demo
    python tools/make_demo_dataset.py --out /tmp/demo --world textured --test-videos-per-class 60

`vmae-pretrain` and `vmae-bench learning` do this by themselves on first use (into their
cache folder); this script is for looking at the videos, or for using them with other tools.
Videos are drawn from (seed, split, class, index) alone, so a larger split starts with the
videos of a smaller one; the `test` split is held out from every run of this project's
commands (no epoch or checkpoint is picked on it).
"""

from __future__ import annotations

import argparse

from video_mae.data.demo import SPLITS, WORLDS, DemoSpec, ensure_demo_dataset


def main() -> None:
    defaults = DemoSpec()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="cache folder to generate into")
    parser.add_argument("--world", choices=sorted(WORLDS), default=defaults.world)
    parser.add_argument("--unlabelled-videos-per-class", type=int, default=defaults.unlabelled_videos_per_class)
    parser.add_argument("--videos-per-class", type=int, default=defaults.videos_per_class)
    parser.add_argument("--val-videos-per-class", type=int, default=defaults.val_videos_per_class)
    parser.add_argument("--test-videos-per-class", type=int, default=defaults.test_videos_per_class)
    args = parser.parse_args()
    spec = DemoSpec(
        cache_dir=args.out,
        world=args.world,
        unlabelled_videos_per_class=args.unlabelled_videos_per_class,
        videos_per_class=args.videos_per_class,
        val_videos_per_class=args.val_videos_per_class,
        test_videos_per_class=args.test_videos_per_class,
    )
    demo = ensure_demo_dataset(spec)
    print(f"classes: {', '.join(demo.classes)}")
    for split in SPLITS:
        print(f"{split + ':':12s}{demo.list_path(split)} ({spec.per_class(split) * len(demo.classes)} videos)")


if __name__ == "__main__":
    main()
