"""Training configs: one file per recipe, each with ``get_config()``."""
