#!/usr/bin/env python
"""Generate the built-in demo dataset into a folder of your choice and print its lists.

    python tools/make_demo_dataset.py --out /tmp/demo --videos-per-class 40

`vmae-pretrain` does this by itself on first use (into its cache folder); this script is
for looking at the videos, or for using them with other tools.

    python tools/make_demo_dataset.py --out /tmp/demo --val-videos-per-class 40 --heldout-after 10

also writes heldout.txt: the validation videos past the first 10 per class. Videos are
generated from (seed, split, class, index) alone, so the first 10 per class are the
default validation set (the same frames) and the rest are videos that a run on the default
demo never saw, not even to pick its best epoch.
"""

from __future__ import annotations

import argparse

from video_mae.data.demo import CLASSES, DemoSpec, ensure_demo_dataset, video_path
from video_mae.data.lists import write_data_list


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="cache folder to generate into")
    parser.add_argument("--videos-per-class", type=int, default=40)
    parser.add_argument("--val-videos-per-class", type=int, default=10)
    parser.add_argument("--heldout-after", type=int, default=None, metavar="N",
                        help="also write heldout.txt: the validation videos from index N on in each class")
    args = parser.parse_args()
    if args.heldout_after is not None and not 0 < args.heldout_after < args.val_videos_per_class:
        parser.error(f"--heldout-after must be between 1 and --val-videos-per-class - 1 ({args.val_videos_per_class - 1})")
    spec = DemoSpec(cache_dir=args.out, videos_per_class=args.videos_per_class, val_videos_per_class=args.val_videos_per_class)
    demo = ensure_demo_dataset(spec)
    print(f"classes: {', '.join(CLASSES)}")
    print(f"train list: {demo.train_list}")
    print(f"val list:   {demo.val_list}")
    if args.heldout_after is not None:
        entries = [
            (video_path("val", label, i), label)
            for label in range(len(CLASSES))
            for i in range(args.heldout_after, args.val_videos_per_class)
        ]
        write_data_list(demo.root / "heldout.txt", entries)
        print(f"held out:   {demo.root / 'heldout.txt'} ({len(entries)} videos)")


if __name__ == "__main__":
    main()
