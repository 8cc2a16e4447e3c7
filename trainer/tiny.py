"""A tiny chat model built locally (no hub), for tests and the CPU demo.

The tokenizer is a BPE trained on a few hundred rendered RLEF turns, with digits kept as
single tokens, and merges within words only: a 2-layer model sees conversations ~5x
shorter than with characters and trains in CPU minutes.
"""

from __future__ import annotations

import random
import re
import string
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from trainer.data import synthetic_problems
from trainer.rollout import first_prompt, retry_prompt
from trainer.sft import digit_feedback

SPECIAL = ["<pad>", "<|end|>", "<|user|>", "<|assistant|>", "<unk>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def corpus(n: int = 300, seed: int = 0) -> list[str]:
    """Rendered prompts, feedback and answers of the shape the trainer produces."""
    rng = random.Random(seed)
    texts = []
    for p in synthetic_problems(n, seed):
        a, b = rng.randrange(10), rng.randrange(10)
        texts += [first_prompt(p), retry_prompt(digit_feedback(a, b), "python"),
                  f"```python\nprint({a})\n```", "All tests passed."]
    return texts


def build_tokenizer(vocab_size: int = 600) -> PreTrainedTokenizerFast:
    alphabet = sorted(set(string.printable) | {"\u2264", "\u2265", "\u2019"})
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    # words (with their trailing space), single digits and single separator characters
    # (the repair task's): merges never cross any, so a digit or a separator is the same
    # token in a statement, in feedback and in code
    from trainer import repair

    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(" ", behavior="merged_with_previous"),
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.Split(Regex("[" + re.escape("".join(repair.SEPARATORS)) + "]"),
                             behavior="isolated")])
    tok.decoder = decoders.Fuse()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL,
                                  initial_alphabet=alphabet, show_progress=False)
    tok.train_from_iterator(corpus() + repair.corpus(), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<|end|>",
                                   unk_token="<unk>", chat_template=CHAT_TEMPLATE)


def build_tiny_model(out_dir: str | Path, n_layer: int = 2, n_embd: int = 64, n_head: int = 4,
                     n_positions: int = 1024, seed: int = 0) -> Path:
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


def build_warmed_tiny_model(out_dir: str | Path, examples: int = 8000, seed: int = 0,
                            task: str = "synthetic") -> Path:
    """The tiny model after its supervised warm-up: the answer format and the program
    template, never feedback reading (see trainer/sft.py and trainer/repair.py)."""
    from trainer.data import synthetic_problems
    from trainer.models import load_lm, load_tokenizer, pick_device
    from trainer.sft import format_examples, supervised

    out = build_tiny_model(out_dir, seed=seed)
    tok, model = load_tokenizer(str(out)), load_lm(str(out), pick_device("cpu"))
    if task == "repair":
        from trainer.repair import warmup_examples

        supervised(model, tok, warmup_examples(examples, seed))
    else:
        supervised(model, tok, format_examples(synthetic_problems(200, seed + 1), examples,
                                               seed))
    model.save_pretrained(out)
    return out
