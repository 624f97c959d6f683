"""The data step: read, validate, clean, split and describe JSONL training data."""

from farense_guide.data.records import DATA_SPLITS, load_split, to_chat  # noqa: F401
