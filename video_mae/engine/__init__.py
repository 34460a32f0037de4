"""Engine: optimisation, schedules, devices and the training loop (plain objects, no Hydra)."""
