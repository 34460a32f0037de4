"""video_mae: self-supervised video pretraining with masked autoencoders."""

__version__ = "0.1.0"
