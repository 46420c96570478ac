"""Provider objects: which wire API a vendor speaks, where it lives and with which key.

An OpenAI-compatible server (Ollama, vLLM, llama.cpp) is a provider object, not a new
adapter::

    ProviderConfig(name="ollama", wire="openai", base_url="http://localhost:11434/v1")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from nomosx.errors import ConfigError

Wire = Literal["openai", "anthropic", "gemini"]
WIRES: tuple[Wire, ...] = get_args(Wire)


@dataclass(frozen=True)
class ProviderConfig:
    """One vendor endpoint.

    ``name`` is what responses, errors and the cost ledger report ("openai", "ollama",
    ...); ``wire`` picks the adapter. ``api_key`` never appears in ``repr``. ``timeout``
    is the time limit of one attempt, in seconds.
    """

    name: str
    wire: Wire
    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    timeout: float = 60.0

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ConfigError("a provider needs a name, e.g. 'openai' or 'ollama'")
        if self.wire not in WIRES:
            raise ConfigError(
                f"provider {self.name!r}: unknown wire {self.wire!r}; use one of {', '.join(WIRES)}"
            )
        if not self.timeout > 0:
            raise ConfigError(f"provider {self.name!r}: timeout must be > 0 s, not {self.timeout}")

    def attempt_timeout(self, request_timeout: float | None) -> float:
        """The time limit of one attempt: the request's deadline caps the provider's."""
        if request_timeout is None:
            return self.timeout
        return min(self.timeout, request_timeout)


__all__ = ["WIRES", "ProviderConfig", "Wire"]
