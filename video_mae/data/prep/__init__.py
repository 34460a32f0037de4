"""Offline preparation, apart from the training pipeline: data lists from official
annotations (builders), checking collections (check), re-encoding (reencode), running
decoders under a time limit (watchdog) and writing mp4 files (encode: the demo set, the
visualiser and the tests). Used by ``vmae-data``, the demo and ``vmae-visualize``."""
