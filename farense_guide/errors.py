"""The one exception type whose message a reader sees: pt-PT, no traceback."""


class FarenseError(Exception):
    """An error the user can fix; the CLI prints its message and exits non-zero."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        text = self.args[0]
        return f"{text}\n  sugestão: {self.hint}" if self.hint else text
