"""What a request may cost at most before the upstream is asked, and what a reply cost.

The gateway holds, before calling the upstream, the prompt's worst case plus
the completion's cap (per choice). Tokens of a prompt are counted by the
upstream's tokenizer, which the gateway does not have, so the worst case is
an upper bound that needs no tokenizer: a BPE or SentencePiece token covers
at least one byte, so a text of B bytes (UTF-8) is at most B tokens. The
chat template adds tokens the client never sent (role markers, and on some
servers a default system prompt), so the bound adds an overhead per model:
`CHATQUOTA_GATEWAY_PROMPT_OVERHEAD` to begin with, raised whenever a reply
reports more prompt tokens than the bound allowed. Media parts (images,
audio, files) are held at MEDIA_PART_TOKENS each, not at their encoded size.
"""

import json
import math
import threading
from dataclasses import dataclass
from fractions import Fraction

MEDIA_PART_TOKENS = 4096
MAX_CHOICES = 128
_MEDIA_TYPES = ("image_url", "input_audio", "file", "image", "audio")


class Invalid(ValueError):
    """A request the gateway cannot plan: `param` names the field."""

    def __init__(self, param: str, message: str):
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Plan:
    """A request's bound: prompt tokens, choices generated, and the cap of each."""

    prompt: int
    choices: int
    cap: int  # completion tokens per choice; 0 for embeddings
    text_bytes: int  # the prompt's size, to learn how a model's tokens relate to it

    @property
    def wanted(self) -> int:
        return self.prompt + self.cap * self.choices

    @property
    def at_least(self) -> int:
        """The smallest hold worth asking for: the prompt and one token per choice."""
        return self.prompt + min(self.cap, 1) * self.choices

    def cap_within(self, granted: int) -> int:
        """Return the cap per choice that keeps prompt + completions within `granted`."""
        return (granted - self.prompt) // self.choices if self.choices else 0


class Learned:
    """What this process has seen of each model's prompts: template overhead, tokens per byte."""

    def __init__(self, overhead: int):
        self._default = overhead
        self._overhead: dict[str, int] = {}
        self._ratio: dict[str, Fraction] = {}
        self._mutex = threading.Lock()

    def overhead(self, model: str) -> int:
        return self._overhead.get(model, self._default)

    def observe(self, model: str, plan: Plan, prompt_tokens: int) -> None:
        """Learn from a reply's reported prompt tokens for a prompt of this plan."""
        with self._mutex:
            if prompt_tokens > plan.prompt:  # the template added more than the bound allowed
                self._overhead[model] = self.overhead(model) + prompt_tokens - plan.prompt
            if plan.text_bytes:
                ratio = Fraction(prompt_tokens, plan.text_bytes)  # exact: the same prompt, the same charge
                self._ratio[model] = max(ratio, self._ratio.get(model, ratio))

    def prompt_charge(self, model: str, plan: Plan) -> int:
        """Return what a prompt is charged when the reply reports no usage.

        The most tokens per byte seen for the model, applied to this prompt;
        the bound itself when nothing was learnt yet.
        """
        ratio = self._ratio.get(model)
        if ratio is None:
            return plan.prompt
        return min(plan.prompt, math.ceil(plan.text_bytes * ratio))


def _whole(body: dict, name: str, default: int | None, low: int = 1,
           high: int = 2**31) -> int | None:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Invalid(name, f"'{name}' must be an integer from {low} to {high}.")
    return value


def _text_bytes(value) -> tuple[int, int]:
    """Return (bytes of text, media parts) of a message content or prompt, recursively."""
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass")), 0
    if isinstance(value, dict):
        if value.get("type") in _MEDIA_TYPES:
            return 0, 1
        size, media = 0, 0
        for key, item in value.items():
            item_size, item_media = _text_bytes(item)
            size, media = size + len(key) + item_size, media + item_media
        return size, media
    if isinstance(value, list):
        parts = [_text_bytes(item) for item in value]
        return sum(p[0] for p in parts), sum(p[1] for p in parts)
    return len(json.dumps(value)), 0


def _plan(text: int, media: int, choices: int, cap: int, overhead: int) -> Plan:
    return Plan(text + media * MEDIA_PART_TOKENS + overhead, choices, cap, text)


def chat(body: dict, model: str, default_cap: int, learned: Learned) -> tuple[Plan, tuple]:
    """Plan a chat completion; return it and the body fields that carry its cap."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise Invalid("messages", "'messages' must be a non-empty list.")
    text, media = _text_bytes(messages)
    for extra in ("tools", "functions", "response_format"):  # rendered into the prompt too
        size, parts = _text_bytes(body.get(extra) or [])
        text, media = text + size, media + parts
    fields = tuple(f for f in ("max_completion_tokens", "max_tokens") if body.get(f) is not None)
    caps = [_whole(body, f, None) for f in fields]
    cap = min(caps) if caps else default_cap
    choices = _whole(body, "n", 1, high=MAX_CHOICES)
    return _plan(text, media, choices, cap, learned.overhead(model)), fields or ("max_tokens",)


def completion(body: dict, model: str, learned: Learned) -> tuple[Plan, tuple]:
    """Plan a (legacy) completion; without max_tokens OpenAI's default of 16 applies."""
    prompt = body.get("prompt")
    if not isinstance(prompt, (str, list)) or not prompt:
        raise Invalid("prompt", "'prompt' must be a non-empty string or list.")
    prompts = len(prompt) if isinstance(prompt, list) and not _is_tokens(prompt) else 1
    text = _token_count(prompt)
    cap = _whole(body, "max_tokens", 16)
    n = _whole(body, "n", 1, high=MAX_CHOICES)
    best_of = _whole(body, "best_of", n, high=MAX_CHOICES)
    return _plan(text, 0, prompts * max(n, best_of), cap, learned.overhead(model)), ("max_tokens",)


def embedding(body: dict, model: str, learned: Learned) -> Plan:
    """Plan an embedding: the input only."""
    given = body.get("input")
    if not isinstance(given, (str, list)) or not given:
        raise Invalid("input", "'input' must be a non-empty string or list.")
    return _plan(_token_count(given), 0, 0, 0, learned.overhead(model))


def _is_tokens(value: list) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) for v in value)


def _token_count(prompt) -> int:
    """Bound a prompt given as text, token ids, or a list of either."""
    if isinstance(prompt, list) and _is_tokens(prompt):
        return len(prompt)
    if isinstance(prompt, list):
        return sum(_token_count(p) for p in prompt)
    return _text_bytes(prompt)[0]


def reported_usage(body) -> tuple[int, int] | None:
    """Return (prompt_tokens, completion_tokens) from a reply's `usage`, if it has one."""
    usage = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens", 0)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
               for v in (prompt, completion)):
        return None
    return prompt, completion
