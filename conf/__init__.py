# The Hydra configs, shipped as the package video_mae.conf (see setup.cfg).
# Hydra imports this package before it reads a config from it: registering the configs'
# resolvers (${vmae_run_name:...}, ${vmae_run_name_free_keys:...}) here lets any compose
# find them, in the apps, in tests, in a notebook or in a launcher's worker process.
from video_mae.cli import register_resolvers

register_resolvers()
