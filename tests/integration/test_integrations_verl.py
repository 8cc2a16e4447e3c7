"""veRL adapters through veRL's own loaders against a real rlef service: the reward function
as `reward.custom_reward_function` loads it, and the interaction as the multi-turn rollout's
interaction registry builds it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from integrations.trl_rollout import RETRY
from tests.integration.rlef_server import rlef_serve

ROOT = Path(__file__).resolve().parents[2]
ADD = "```python\na, b = map(int, input().split())\nprint(a + b)\n```"
SUB = "```python\na, b = map(int, input().split())\nprint(a - b)\n```"
IN_OUTS = json.dumps({"inputs": ["1 2\n", "5 5\n", "7 0\n"], "outputs": ["3\n", "10\n", "7\n"]})


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with rlef_serve(tmp_path_factory.mktemp("svc") / "serve.log", "--pool-size", "2") as u:
        yield u


def test_custom_reward_function_as_verl_loads_it(url: str) -> None:
    from omegaconf import OmegaConf
    from verl.trainer.ppo.reward import get_custom_reward_fn

    config = OmegaConf.create({"reward": {"custom_reward_function": {
        "path": str(ROOT / "integrations/verl.py"), "name": "compute_score",
        "reward_kwargs": {"url": url}}}})
    fn = get_custom_reward_fn(config)
    assert fn is not None

    def score(solution: str, truth: str = IN_OUTS, **extra: object) -> dict[str, object]:
        return asyncio.run(fn(data_source="apps", solution_str=solution, ground_truth=truth,
                              extra_info=extra or None))  # type: ignore[no-any-return]

    assert score(ADD) == {"score": 1.0, "acc": True, "passed": 1.0, "sandbox_error": 0.0}
    wrong = score(SUB)
    assert wrong["score"] == 0.0 and wrong["passed"] == pytest.approx(1 / 3)
    assert score("I cannot solve this.")["score"] == 0.0
    # a multi-turn response is one string in veRL: the last turn's program is scored
    feedback = RETRY.format(feedback="Expected '3' but got '-1'", language="python")
    assert score(f"{SUB}\n{feedback}\n{ADD}")["score"] == 1.0
    call = json.dumps({"fn_name": "twice", "inputs": ["3", "[1, 2]"],
                       "outputs": ["6", "[1, 2, 1, 2]"]})
    assert score("```python\ndef twice(x):\n    return x * 2\n```", call)["score"] == 1.0
    cpp = "```cpp\n#include <cstdio>\nint main(){int a,b;scanf(\"%d %d\",&a,&b);" \
          "printf(\"%d\\n\",a+b);}\n```"
    assert score(cpp, language="cpp")["score"] == 1.0


def test_interaction_from_verl_registry(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from verl.interactions.utils.interaction_registry import initialize_interactions_from_config

    monkeypatch.setenv("RLEF_URL", url)
    interaction = initialize_interactions_from_config(
        str(ROOT / "integrations/verl_interaction.yaml"))["rlef"]

    async def episode() -> None:
        iid = await interaction.start_interaction(ground_truth=IN_OUTS)
        messages = [{"role": "user", "content": "Add two numbers."},
                    {"role": "assistant", "content": SUB}]
        done, reply, turn_score, _ = await interaction.generate_response(iid, messages)
        assert not done and turn_score == 0.0
        assert "Expected" in reply or "expected" in reply, reply
        assert await interaction.calculate_score(iid) == 0.0
        messages += [{"role": "user", "content": reply}, {"role": "assistant", "content": ADD}]
        done, reply, turn_score, _ = await interaction.generate_response(iid, messages)
        assert done and turn_score == 1.0
        assert await interaction.calculate_score(iid) == 1.0
        await interaction.finalize_interaction(iid)

    asyncio.run(episode())


def test_interaction_scores_private_tests(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Passing the public tests ends the episode; the reward still counts the private ones."""
    from verl.interactions.utils.interaction_registry import initialize_interactions_from_config

    monkeypatch.setenv("RLEF_URL", url)
    interaction = initialize_interactions_from_config(
        str(ROOT / "integrations/verl_interaction.yaml"))["rlef"]
    hardcoded = "```python\nprint(3)\n```"

    async def episode() -> None:
        iid = await interaction.start_interaction(
            public_tests=[{"stdin": "1 2\n", "expected_stdout": "3"}],
            private_tests=[{"stdin": "5 5\n", "expected_stdout": "10"}])
        done, _, turn_score, _ = await interaction.generate_response(
            iid, [{"role": "assistant", "content": hardcoded}])
        assert done and turn_score == 0.0
        assert await interaction.calculate_score(iid) == 0.0

    asyncio.run(episode())
