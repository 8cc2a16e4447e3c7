"""Code out of a model's completion: the last fenced block, preferring the language's."""

from __future__ import annotations

import re
from typing import Any

FENCE = re.compile(r"```([\w+#-]*)[^\n]*\n(.*?)(?:```|$)", re.DOTALL)
ALIASES = {"python": {"python", "py", "python3"}, "cpp": {"cpp", "c++", "cc", "cxx"},
           "javascript": {"javascript", "js", "nodejs", "node"}, "bash": {"bash", "sh", "shell"}}


def completion_text(completion: Any) -> str:
    """TRL hands completions as plain text or as a list of chat messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "".join(str(m.get("content", "")) for m in completion
                       if isinstance(m, dict) and m.get("role", "assistant") == "assistant")
    return str(completion)


def extract_code(text: str, language: str = "python") -> str | None:
    """The last fenced block tagged with the language, else the last fenced block; None
    when the completion has no fence at all (the caller scores that as no code)."""
    blocks = [(tag.lower(), body) for tag, body in FENCE.findall(text)]
    if not blocks:
        return None
    names = ALIASES.get(language, {language})
    tagged = [body for tag, body in blocks if tag in names]
    return (tagged or [body for _, body in blocks])[-1]
