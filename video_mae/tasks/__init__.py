"""Tasks: Hydra configs enter here and become plain objects for the layers below."""
