"""hfharvest: harvest the Hugging Face Hub catalog, every sort walked to the end and merged."""

__version__ = "0.1.0"
