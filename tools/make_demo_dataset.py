#!/usr/bin/env python
"""Generate the built-in demo dataset into a folder of your choice and print its lists.

    python tools/make_demo_dataset.py --out /tmp/demo --videos-per-class 40

`vmae-pretrain` does this by itself on first use (into its cache folder); this script is
for looking at the videos, or for using them with other tools.
"""

from __future__ import annotations

import argparse

from video_mae.data.demo import CLASSES, DemoSpec, ensure_demo_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="cache folder to generate into")
    parser.add_argument("--videos-per-class", type=int, default=40)
    parser.add_argument("--val-videos-per-class", type=int, default=10)
    args = parser.parse_args()
    spec = DemoSpec(cache_dir=args.out, videos_per_class=args.videos_per_class, val_videos_per_class=args.val_videos_per_class)
    demo = ensure_demo_dataset(spec)
    print(f"classes: {', '.join(CLASSES)}")
    print(f"train list: {demo.train_list}")
    print(f"val list:   {demo.val_list}")


if __name__ == "__main__":
    main()
