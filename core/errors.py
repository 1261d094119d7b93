"""One error tree for everything a user may see.

    PodiumError(message, hint)
     ├── RecipeError       a recipe that cannot run: file, line, field, hint
     ├── InputError        a run's inputs do not match the recipe's [inputs]
     ├── ConfigError       config.toml or the model catalog is wrong
     ├── StoreError        the database, a run or a step that is not there
     │    └── RunBusy      another live process is running that run
     ├── ReviewError       a decision that cannot be taken (wrong action, bad value, decided)
     ├── StepError         a step failed in a way a retry will not fix (bad template, bad JSON)
     │    └── StepTimeout  an attempt ran past the step's `timeout` (retryable)
     ├── ToolError         a tool refused or failed; the agent reads it and may try again
     └── ProviderError     a model backend failed; `retryable` says if trying again may help
          ├── RateLimited(retry_after)
          ├── Timeout
          │    └── CallTimedOut  the whole call, retries included, ran out (not retried)
          ├── Unavailable
          │    └── ModelMissing   the model file is not there (waiting will not help)
          ├── BadResponse
          ├── Rejected      the backend refused the request as given (not retryable)
          └── AuthError

The CLI and the TUI catch `PodiumError` and show `message` and `hint`; any other
exception is a bug and may show a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PodiumError(Exception):
    """An expected failure with a message for a person and a hint on what to do.
    `retryable` is a property of the class: whether trying again may help."""

    exit_code = 1
    retryable = False

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class RecipeError(PodiumError):
    """A recipe that cannot run. Carries where: `file:line: field: message`."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.file = file
        self.line = line
        self.field = field

    @property
    def location(self) -> str:
        """`file:line: field` with whatever parts are known."""
        where = self.file or "<recipe>"
        if self.line is not None:
            where += f":{self.line}"
        return f"{where}: {self.field}" if self.field else where

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class RecipeErrors(RecipeError):
    """Several recipe problems found in one pass, so a user fixes them all at once."""

    def __init__(self, errors: list[RecipeError]) -> None:
        first = errors[0]
        super().__init__(first.message, first.hint, file=first.file, line=first.line,
                         field=first.field)
        self.errors = errors

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


class InputError(PodiumError):
    """A run's inputs do not fit the recipe's `[inputs]`."""

    exit_code = 2


class ConfigError(PodiumError):
    """The configuration or model catalog is wrong."""

    exit_code = 2


class StoreError(PodiumError):
    """The database cannot be used, or a run / step asked for is not in it."""

    exit_code = 2


class RunBusy(StoreError):
    """Another live process is running the run (it picks up decisions by itself)."""

    def __init__(self, run_id: str, pid: int | None, host: str | None) -> None:
        where = f"process {pid}" + (f" on {host}" if host else "")
        super().__init__(f"run {run_id} is running in {where}",
                         "wait for it, or stop that process first")
        self.run_id = run_id
        self.pid = pid


class ReviewError(PodiumError):
    """A decision that cannot be taken: wrong action, bad value, already decided."""

    exit_code = 2


class StepError(PodiumError):
    """A step failed in a way that retrying will not fix."""


class StepTimeout(StepError):
    """One attempt of a step ran past its `timeout`; another attempt may finish."""

    retryable = True


class ProviderError(PodiumError):
    """A model backend failed. `retryable` tells the engine whether to try again."""


class RateLimited(ProviderError):
    """The backend asked us to slow down."""

    retryable = True

    def __init__(self, message: str, hint: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message, hint)
        self.retry_after = retry_after


class Timeout(ProviderError):
    """The backend did not answer in time."""

    retryable = True


class CallTimedOut(Timeout):
    """A model call ran past its whole `timeout`, its own retries included: a step
    retry would only wait as long again, so it is not retried (a routed call still
    falls back)."""

    retryable = False


class Unavailable(ProviderError):
    """The backend cannot be reached or is not installed / loaded."""

    retryable = True


class ModelMissing(Unavailable):
    """The model's file is not there: waiting will not bring it back."""

    retryable = False


class BadResponse(ProviderError):
    """The backend answered with something we cannot use."""

    retryable = True


class PromptTooLong(BadResponse):
    """The prompt does not fit the model's context window: this model cannot answer it
    as given, and asking again will not change that."""

    retryable = False


class Rejected(ProviderError):
    """The backend refused the request as given (a 4xx, a schema it cannot follow):
    sending it again will not help."""


class AuthError(ProviderError):
    """The key is missing or refused. Never includes the key itself."""


def did_you_mean(name: str, known: Iterable[str], otherwise: str | None = None, *,
                 prefix: str = "", always: bool = False) -> str | None:
    """`did you mean 'x'?` for the closest of `known`; else `otherwise`. With `always`,
    `otherwise` follows the suggestion too."""
    close = difflib.get_close_matches(name, sorted(known), n=1)
    if not close:
        return otherwise
    said = f"did you mean '{prefix}{close[0]}'?"
    return f"{said} {otherwise}" if always and otherwise else said


class ToolError(PodiumError):
    """A tool refused or failed in a way the agent should read and may work around:
    a path outside its roots, a host not allowed, a division by zero."""
