"""Token estimates for calls whose usage the provider never reported (a cut stream)."""

from __future__ import annotations

import math

from nomosx.llm.types import LLMRequest, TokenUsage

# about four characters a token for English text, the usual rule of thumb
CHARS_PER_TOKEN = 4.0


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0


def estimate_usage(request: LLMRequest, output: str) -> TokenUsage:
    prompt = sum(estimate_tokens(m.content) + 4 for m in request.messages)
    return TokenUsage(input_tokens=prompt, output_tokens=estimate_tokens(output))
