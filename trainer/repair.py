"""The repair task family: the information a fix needs exists only in execution feedback.

"Read integers from one line and print their sum": the separator is hidden (the
statement never names it). A program that splits on the wrong separator crashes, and the
service's feedback shows the failing input (and the ValueError's traceback), where the
separator can be read. The fix must become code: private tests use other numbers and
lengths, so printing the public test's answer fails them.

The warm-up (`warmup_examples`) teaches the program template with the separator *given*
in the statement, and answers feedback turns with a random separator, drawn
independently of the feedback: it cannot teach reading the feedback. RL has to.
"""

from __future__ import annotations

import random

from service.schema import StdioTest, TestResult, Verdict, render_feedback
from trainer.data import Problem
from trainer.rollout import Message, first_prompt, retry_prompt

SEPARATORS = [",", ";", ":", "|", "/", "#", "@", "&"]
HIDDEN = "Read integers from one line and print their sum."


def given(sep: str, example: str) -> str:
    """The warm-up's statement: the separator shown in an example input, quoted as the
    feedback quotes inputs."""
    return (f"Read integers from one line, as in '{example.strip()}', and print their sum.")


def program(sep: str) -> str:
    return f"```python\nprint(sum(map(int, input().split('{sep}'))))\n```"


def case(rng: random.Random, sep: str, low: int, high: int, count: int) -> StdioTest:
    nums = [rng.randrange(low, high) for _ in range(count)]
    return StdioTest(stdin=sep.join(map(str, nums)) + "\n", expected_stdout=str(sum(nums)))


def repair_problems(n: int, seed: int) -> list[Problem]:
    """A hidden separator per problem; the public test uses single digits, the three
    private tests other lengths and multi-digit numbers."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        sep = rng.choice(SEPARATORS)
        public = [case(rng, sep, 1, 10, 3)]
        private = [case(rng, sep, 10, 1000, rng.randrange(2, 6)) for _ in range(3)]
        out.append(Problem(id=f"repair/{seed}/{i}", statement=HIDDEN, public_tests=public,
                           private_tests=private))
    return out


def crash_feedback(stdin: str, wrong: str) -> str:
    """Feedback of the shape the service gives a program that split on `wrong`."""
    code = program(wrong).split("\n")[1]
    trace = ("Traceback (most recent call last):\n  File \"/work/build/main.py\", line 1, "
             f"in <module>\n    {code}\n          {'^' * 33}\n"
             f"ValueError: invalid literal for int() with base 10: '{stdin.strip()}'")
    result = TestResult(verdict=Verdict.runtime_error, input=stdin, message=trace)
    return render_feedback([result], ["stdio"])


def warmup_examples(n: int, seed: int, feedback_share: float = 0.3
                    ) -> list[tuple[list[Message], str]]:
    rng = random.Random(seed)
    out: list[tuple[list[Message], str]] = []
    for p in repair_problems(n, seed + 7):
        test = p.public_tests[0]
        stdin = test.stdin if isinstance(test, StdioTest) else ""
        answer_sep = rng.choice(SEPARATORS)
        roll = rng.random()
        if roll < feedback_share:  # a retry, answered without looking at the feedback
            wrong = rng.choice([s for s in SEPARATORS if s != stdin[1:2]])
            conv: list[Message] = [
                {"role": "user", "content": first_prompt(p)},
                {"role": "assistant", "content": program(wrong)},
                {"role": "user", "content": retry_prompt(crash_feedback(stdin, wrong),
                                                         "python")}]
        elif roll < 0.5:  # the hidden statement: a guess
            conv = [{"role": "user", "content": first_prompt(p)}]
        else:  # the statement gives the separator: use it
            example = "".join(d + answer_sep for d in stdin[::2].strip())[:-1]
            shown = p.model_copy(update={"statement": given(answer_sep, example)})
            conv = [{"role": "user", "content": first_prompt(shown)}]
        out.append((conv, program(answer_sep)))
    return out


def corpus(n: int = 100, seed: int = 0) -> list[str]:
    """Texts of this task for the tiny tokenizer."""
    texts = []
    for conv, answer in warmup_examples(n, seed, feedback_share=1.0):
        texts += [m["content"] for m in conv] + [answer, given(SEPARATORS[0], "1,2")]
    return texts
