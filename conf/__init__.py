# The Hydra configs, shipped as the package video_mae.conf (see setup.cfg).
