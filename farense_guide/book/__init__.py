"""The book: the guide's generated values and tables, the MkDocs values extension, the PDF and the snippet runner.

The book reads what the ML tool writes; nothing outside this package imports it.
"""
