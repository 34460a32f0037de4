"""Models: the video ViT encoder, the MAE pretraining model and their parts."""

from .mae import IMAGENET_MEAN, IMAGENET_STD, MAEOutput, MaskedAutoencoder
from .vit import VisionTransformer3D

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "MAEOutput", "MaskedAutoencoder", "VisionTransformer3D"]
