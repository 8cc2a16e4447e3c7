"""Pure pieces of an episode: prompts, code extraction, rewards, limits."""

from service.schema import StdioTest
from trainer.data import Problem
from trainer.rollout import (
    episode_reward,
    extract_code,
    first_prompt,
    problem_limits,
    retry_prompt,
    turn_rewards,
)

P = Problem(id="p", statement="Add two numbers.", public_tests=[StdioTest(expected_stdout="3")])


def test_prompts_use_the_paper_wording():
    assert first_prompt(P) == (
        "Provide a Python solution for the following competitive programming question: "
        "Add two numbers.\n\nYour code should be enclosed in triple backticks like so: "
        "```python YOUR CODE HERE ```. Use the backticks for your code only.")
    retry = retry_prompt("Your code failed the following tests:", "cpp")
    assert retry.startswith("Your code failed the following tests:\n\nGive it another try.\n")
    assert retry.endswith(
        "like so: ```cpp YOUR CODE HERE ```. Use the backticks for your code only.")


def test_extract_code_takes_the_last_block_of_the_language():
    text = "First:\n```python\nprint(1)\n```\nthen\n```python\nprint(2)\n```\nDone."
    assert extract_code(text, "python") == "print(2)\n"


def test_extract_code_skips_other_languages_and_accepts_untagged():
    text = "```python\nprint(1)\n```\n```text\noutput\n```"
    assert extract_code(text, "python") == "print(1)\n"
    assert extract_code("```\nx = 1\n```", "python") == "x = 1\n"
    assert extract_code("```py\nx = 1```", "python") == "x = 1\n"
    assert extract_code("```c++\nint main(){}\n```", "cpp") == "int main(){}\n"


def test_extract_code_none_when_missing_empty_or_unclosed():
    assert extract_code("print(1)", "python") is None
    assert extract_code("```python\n\n```", "python") is None
    assert extract_code("```python\nprint(1)", "python") is None
    assert extract_code("```cpp\nint main(){}\n```", "python") is None


def test_episode_reward():
    assert episode_reward(True, 0) == 1.0
    assert episode_reward(False, 0) == -1.0
    assert episode_reward(True, 2) == 1.0 - 0.4
    assert episode_reward(False, 1, invalid_penalty=-0.5) == -1.5


def test_turn_rewards_put_the_outcome_on_the_last_turn():
    assert turn_rewards(3, True, [True, False, False]) == [-0.2, 0.0, 1.0]
    assert turn_rewards(1, False, [False]) == [-1.0]
    assert turn_rewards(2, False, [False, True]) == [0.0, -1.2]
    # the turn rewards always sum to the episode reward
    invalid = [True, True, False]
    assert sum(turn_rewards(3, False, invalid)) == episode_reward(False, 2)


def test_problem_limits_default_to_the_paper():
    lim = problem_limits(P)
    assert (lim.cpu_time_s, lim.memory_mb) == (10.0, 1024)
    own = problem_limits(P.model_copy(update={"time_limit_s": 2.0, "memory_mb": 256}))
    assert (own.cpu_time_s, own.wall_time_s, own.memory_mb) == (2.0, 5.0, 256)


def test_pass_at_matches_the_combinatorial_definition():
    from math import comb

    from trainer.eval import pass_at

    for n, c, k in [(10, 3, 1), (10, 3, 5), (20, 0, 10), (5, 5, 2), (12, 2, 10)]:
        assert abs(pass_at(n, c, k) - (1 - comb(n - c, k) / comb(n, k))) < 1e-12
    assert pass_at(4, 1, 1) == 0.25


def test_solved_by_turn_carries_the_last_attempt_forward():
    from trainer.eval import solved_by_turn

    assert solved_by_turn([False, True], 3) == [False, True, True]
    assert solved_by_turn([True], 3) == [True, True, True]
    assert solved_by_turn([False, False, False], 3) == [False, False, False]


def test_summarise_rates_and_n_at_k():
    from trainer.eval import summarise

    # two problems, two rollouts each, three turns
    per_problem = [[[False, True, True], [False, False, False]],
                   [[True, True, True], [True, True, True]]]
    rep = summarise(per_problem, 3, [2, 3, 1, 1], ns=(1, 10))
    assert rep.single_turn_solve_rate == 0.5
    assert rep.multi_turn_solve_rate == 0.75
    assert rep.pass_by_turn == [0.5, 0.75, 0.75]
    assert rep.n_at_k == {"1@3": 0.75}  # 10 rollouts not available from 2
    assert rep.mean_turns == 1.75


def test_extract_code_prefers_a_tagged_block_over_a_trailing_untagged_one():
    text = "```python\nprint(sum(map(int, input().split())))\n```\nSample output:\n```\n3\n```"
    assert extract_code(text, "python") == "print(sum(map(int, input().split())))\n"
    assert extract_code("```\n3\n```", "python") == "3\n"  # untagged only when alone


class Scripted:
    """An executor double that answers from a script and records when it ran (the
    service's own behaviour is tested against the real service elsewhere)."""

    def __init__(self, statuses: list[str], delay: float = 0.0) -> None:
        self.statuses, self.delay, self.calls = statuses, delay, []

    def execute_many(self, requests, progress=False):
        import time

        from service.schema import ExecuteResult, Verdict

        start = time.perf_counter()
        time.sleep(self.delay)
        out = []
        for _ in requests:
            status = self.statuses.pop(0) if self.statuses else "ok"
            out.append(ExecuteResult(status=status, verdict=None if status != "ok"
                                     else Verdict.accepted, feedback="All tests passed."))
        self.calls.append((start, time.perf_counter(), len(requests)))
        return out


class Writer:
    gen_batch = 2

    def __init__(self) -> None:
        self.calls = []

    def generate(self, conversations):
        import time

        from trainer.rollout import Generation

        self.calls.append(time.perf_counter())
        time.sleep(0.05)
        return [Generation("```python\nprint(3)\n```", [1], [2]) for _ in conversations]


def test_a_sandbox_error_is_retried_then_the_episode_is_dropped_never_a_reward():
    from trainer.rollout import RolloutStats, run_episodes

    stats = RolloutStats()
    # episode 0's run and both its retries fail in the service: dropped
    client = Scripted(["sandbox_error", "ok", "sandbox_error", "sandbox_error"])
    episodes = run_episodes([P, P], Writer(), client, 3, retries=2, stats=stats)
    assert [e.dropped for e in episodes] == [True, False]
    assert episodes[1].solved and episodes[1].reward == 1.0
    assert stats.dropped == 1 and stats.retried == 2
    # a failure that a retry clears costs nothing
    stats = RolloutStats()
    episodes = run_episodes([P], Writer(), Scripted(["sandbox_error", "ok"]), 3, stats=stats)
    assert episodes[0].solved and not episodes[0].dropped and stats.retried == 1


def test_execution_overlaps_the_next_generation_batch():
    from trainer.rollout import RolloutStats, run_episodes

    stats = RolloutStats()
    writer, client = Writer(), Scripted([], delay=0.3)
    run_episodes([P] * 4, writer, client, 1, stats=stats)
    first_exec_start, first_exec_end, n = client.calls[0]
    assert n == 2 and len(writer.calls) == 2
    assert first_exec_start < writer.calls[1] < first_exec_end  # batch 2 generated meanwhile
    assert stats.exec_wait_s > 0 and stats.generate_s > 0


def test_call_based_problems_show_their_starter_code():
    prob = P.model_copy(update={"starter_code": "def solve(a, b):\n    "})
    assert "```python\ndef solve(a, b):\n```" in first_prompt(prob)
    assert "Starter code" not in first_prompt(P)


def test_generation_stops_on_every_stop_id_of_the_generation_config(tmp_path):
    from transformers import GenerationConfig

    from trainer.models import load_lm, load_tokenizer
    from trainer.policy import stop_ids
    from trainer.tiny import build_tiny_model

    path = str(build_tiny_model(tmp_path / "m", n_layer=1, n_embd=16, n_head=2))
    tok, model = load_tokenizer(path), load_lm(path, __import__("torch").device("cpu"))
    model.generation_config = GenerationConfig(eos_token_id=[7, 8, tok.eos_token_id])
    assert stop_ids(model, tok) == [tok.eos_token_id, 7, 8]


def test_submissions_prefer_programs_that_pass_the_public_tests():
    from service.schema import ExecuteResult, Verdict
    from trainer.eval import submit
    from trainer.rollout import Episode, Generation, Turn

    def episode(public: bool, solved: bool) -> Episode:
        res = ExecuteResult(verdict=Verdict.accepted if public else Verdict.wrong_answer)
        turn = Turn([], Generation("", [1], [2]), "print(1)\n", res)
        return Episode(P, [turn], solved=solved)

    # the one solving program fails the public tests: 1@k never submits it
    eps = [episode(True, False), episode(False, True), episode(True, False)]
    assert not submit(eps, 1) and not submit(eps, 2) and submit(eps, 3)
    assert submit([episode(False, False), episode(True, True)], 1)


def test_n_at_k_spends_k_samples_as_rollouts_of_max_turns():
    from trainer.eval import n_at_k

    writer, client = Writer(), Scripted([])
    assert n_at_k([P, P], writer, client, 10, 100, 3) == 1.0
    # 33 rollouts of <= 3 turns per problem, each passing at once: run, then graded
    assert sum(n for _, _, n in client.calls) == 2 * 33 * 2
