"""The data step: records, validation, cleaning, splitting and statistics of the JSONL data set."""
