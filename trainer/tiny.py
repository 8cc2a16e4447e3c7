"""A tiny character-level chat model built locally (no hub), for tests and the CPU demo."""

from __future__ import annotations

import string
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

SPECIAL = ["<pad>", "<|end|>", "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def build_tokenizer() -> PreTrainedTokenizerFast:
    chars = sorted(set(string.printable) | {"\u2264", "\u2265", "\u2019"})
    vocab = {t: i for i, t in enumerate(SPECIAL + ["<unk>"] + chars)}
    # BPE with no merges is a character-level tokenizer that keeps whitespace exactly.
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.add_special_tokens(SPECIAL)
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<|end|>",
                                   unk_token="<unk>", chat_template=CHAT_TEMPLATE)


def build_tiny_model(out_dir: str | Path, n_layer: int = 2, n_embd: int = 96, n_head: int = 4,
                     n_positions: int = 2048, seed: int = 0) -> Path:
    """Write a fresh tiny GPT-2 and its tokenizer to out_dir (loadable by from_pretrained)."""
    torch.manual_seed(seed)
    tok = build_tokenizer()
    config = GPT2Config(vocab_size=len(tok), n_positions=n_positions, n_embd=n_embd,
                        n_layer=n_layer, n_head=n_head, bos_token_id=tok.eos_token_id,
                        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = GPT2LMHeadModel(config)
    out = Path(out_dir)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
