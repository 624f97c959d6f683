"""farense-guide: fine-tuning de um modelo de linguagem num Apple M1 de 16 GB, com MLX.

Nothing heavy is imported here, so `noxfile.py` and the CLI can read the package
before MLX is loaded (OpenBLAS must be preloaded before MLX starts).
"""

__version__ = "0.1.0"
