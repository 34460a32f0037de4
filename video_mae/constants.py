"""Numbers shared across the package, in a module that imports nothing."""

# ImageNet's RGB mean and standard deviation: VideoMAE normalises every clip with them.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
