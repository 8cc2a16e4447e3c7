"""The trainer end to end: `rlef` CLI processes against a real local execution service."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.integration.queue_helpers import RLEF
from trainer.demo import local_service

ROOT = Path(__file__).resolve().parents[2]
APPS = ROOT.parent / "shared/data/mapcoder/APPS_selected150.jsonl"


def rlef(*args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RLEF, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


@pytest.fixture(scope="module")
def service_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with local_service(tmp_path_factory.mktemp("svc") / "service.log") as url:
        yield url


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("tiny") / "model"
    res = rlef("tiny-model", str(out), "--warmup-examples", "1500")
    assert res.returncode == 0, res.stderr
    return str(out)


def test_demo_train_learns_to_use_feedback(tmp_path: Path) -> None:
    """RL raises held-out multi-turn solving far above its start and its own turn 1."""
    report_path = tmp_path / "report.json"
    res = rlef("demo-train", "--config", "configs/tiny-synthetic.yaml", "--out-dir",
               str(tmp_path / "run"), "--out", str(report_path))
    assert res.returncode == 0, res.stderr[-3000:]
    print(res.stdout)  # the before/after table
    report = json.loads(report_path.read_text())
    before, after = report["before"], report["after"]
    assert before["problems"] == after["problems"] == 200
    # 200 held-out problems: a 0.25 margin is > 5 standard errors of either rate
    assert after["multi_turn_solve_rate"] >= before["multi_turn_solve_rate"] + 0.25
    assert after["multi_turn_solve_rate"] >= after["single_turn_solve_rate"] + 0.25
    assert after["single_turn_solve_rate"] <= 0.25  # turn 1 stays a guess: 1 in 10
    run = tmp_path / "run"
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 31))
    assert {"reward", "solve_rate", "kl", "policy_loss", "value_loss"} <= set(rows[0])
    assert "eval_solve_rate" in rows[9]
    assert (run / "curves.png").stat().st_size > 10_000
    assert (run / "final" / "config.json").exists() and list((run / "tb").iterdir())


@pytest.mark.timeout(3600)  # 3 RL seeds: minutes on 2 quiet cores, far more when shared
def test_demo_train_repairs_code_from_feedback(tmp_path: Path) -> None:
    """`make demo-train`: after RL the policy repairs its program from the feedback, beyond
    what the same budget of independent samples, the same policy with the feedback text
    blanked, or the policy before RL achieve (means over 3 RL seeds, private tests)."""
    report_path = tmp_path / "report.json"
    res = rlef("demo-train", "--out-dir", str(tmp_path / "run"), "--out", str(report_path),
               timeout=3600)
    assert res.returncode == 0, res.stderr[-3000:]
    print(res.stdout)
    assert res.stdout.strip().splitlines()[-1].startswith("repair: multi-turn 1@3 ")
    report = json.loads(report_path.read_text())
    seeds = report["seeds"]
    assert len(seeds) >= 3 and report["before"]["problems"] == 200

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    multi = mean([s["multi_turn"]["multi_turn_solve_rate"] for s in seeds])
    independent = mean([s["multi_turn"]["independent_1_at_k"] for s in seeds])
    blind = mean([s["no_feedback"]["multi_turn_solve_rate"] for s in seeds])
    before = report["before"]["multi_turn_solve_rate"]
    # 200 problems: a rate's standard error is <= 0.036; each margin is > 5 of them and
    # none can hold for the untrained policy, whose every rate is the before-RL one
    assert multi >= before + 0.2
    assert multi >= independent + 0.2
    assert multi >= blind + 0.2
    assert blind <= independent + 0.1  # without the feedback's content: no better than chance


def test_train_checkpoints_and_resumes_with_grpo(service_url: str, tiny: str,
                                                 tmp_path: Path) -> None:
    common = ["--service-url", service_url, "--model", tiny, "--data", "synthetic",
              "--out-dir", str(tmp_path), "--set", "checkpoint_every=1",
              "--set", "problems_per_step=8", "--set", "max_new_tokens=12",
              "--set", "advantage=grpo", "--set", "group_size=4", "--set", "minibatch=8"]
    first = rlef("train", *common, "--steps", "2")
    assert first.returncode == 0, first.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-1",
                                                                     "checkpoint-2"]
    resumed = rlef("train", *common, "--steps", "3", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-2",
                                                                     "checkpoint-3"]
    plot = rlef("plot", str(tmp_path))
    assert plot.returncode == 0 and (tmp_path / "curves.png").exists(), plot.stderr


def test_eval_on_apps(service_url: str, tiny: str, tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    res = rlef("eval", "--service-url", service_url, "--model", tiny, "--data", str(APPS),
               "--limit", "4", "--samples", "2", "--turns", "2", "--max-new-tokens", "24",
               "--out", str(out))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "multi-turn solve rate" in res.stdout
    report = json.loads(out.read_text())
    assert report["problems"] == 4 and report["rollouts_per_problem"] == 2
    assert list(report["n_at_k"]) == ["1@2"] and len(report["pass_by_turn"]) == 2
    assert 1 <= report["mean_turns"] <= 2


@pytest.mark.parametrize(("args", "message"), [
    (["train", "--data", "synthetic"], "--model and --data are required"),
    (["train", "--model", "m", "--data", "synthetic", "--set", "nope=1"], "config"),
    (["train", "--model", "m", "--data", "synthetic", "--set", "steps"], "key=value"),
    (["train", "--model", "m", "--data", "synthetic", "--service-url",
      "http://127.0.0.1:9"], "execution service"),
    (["eval", "--model", "m", "--data", "x", "--turns", "0"], "at least 1"),
    (["plot", "/nonexistent-run"], "does not exist"),
])
def test_cli_errors_are_messages_not_tracebacks(args: list[str], message: str) -> None:
    res = rlef(*args, timeout=120)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert message in res.stderr and "Traceback" not in res.stderr


def test_eval_reports_unreadable_data(service_url: str, tiny: str) -> None:
    res = rlef("eval", "--service-url", service_url, "--model", tiny,
               "--data", "/nonexistent.jsonl")
    assert res.returncode == 2 and "cannot read" in res.stderr and "Traceback" not in res.stderr


def test_data_parallel_on_two_cpu_processes(service_url: str, tiny: str, tmp_path: Path) -> None:
    """torchrun, 2 ranks on gloo: each rolls out its own problems; weights stay identical."""
    torchrun = str(Path(RLEF).parent / "torchrun")
    res = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node", "2", RLEF, "train",
         "--service-url", service_url, "--model", tiny, "--data", "synthetic",
         "--out-dir", str(tmp_path), "--steps", "2", "--set", "problems_per_step=6",
         "--set", "max_new_tokens=12", "--set", "minibatch=4", "--set", "checkpoint_every=0"],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    ranks = json.loads((tmp_path / "ranks.json").read_text())
    assert ranks["world"] == 2
    a, b = ranks["weight_checksums"]
    assert a == b  # the same steps on every rank
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert (tmp_path / "final" / "config.json").exists()


def test_lora_checkpointing_and_accumulation(service_url: str, tiny: str, tmp_path: Path) -> None:
    """The 8B-on-one-GPU settings: LoRA adapters, activation checkpointing, micro-batches."""
    common = ["--service-url", service_url, "--model", tiny, "--data", "synthetic",
              "--out-dir", str(tmp_path), "--set", "lora_r=4", "--set", "micro_batch=2",
              "--set", "gradient_checkpointing=true", "--set", "problems_per_step=6",
              "--set", "max_new_tokens=12", "--set", "checkpoint_every=1", "--set", "lr=1e-3"]
    first = rlef("train", *common, "--steps", "1")
    assert first.returncode == 0, first.stderr[-3000:]
    assert (tmp_path / "checkpoint-1" / "adapter_config.json").exists()
    resumed = rlef("train", *common, "--steps", "2", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    final = tmp_path / "final"
    assert (final / "config.json").exists() and not (final / "adapter_config.json").exists()
    ev = rlef("eval", "--service-url", service_url, "--model", str(final), "--data",
              "synthetic", "--limit", "4", "--max-new-tokens", "12")
    assert ev.returncode == 0, ev.stderr[-3000:]


def test_async_rollouts(service_url: str, tiny: str, tmp_path: Path) -> None:
    """Rollouts of step t+1 run (stale by one step, importance-corrected) during step t."""
    res = rlef("train", "--service-url", service_url, "--model", tiny, "--data", "synthetic",
               "--out-dir", str(tmp_path), "--steps", "3", "--set", "async_rollouts=true",
               "--set", "problems_per_step=6", "--set", "max_new_tokens=12",
               "--set", "checkpoint_every=0")
    assert res.returncode == 0, res.stderr[-3000:]
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert all(abs(r["policy_loss"]) < 100 for r in rows)


def test_fsdp_on_two_cpu_processes(service_url: str, tiny: str, tmp_path: Path) -> None:
    """torchrun, 2 ranks on gloo with fsdp: each rank holds about half the parameters; the
    ranks agree on the gathered weights, and the saved model is whole."""
    torchrun = str(Path(RLEF).parent / "torchrun")
    res = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node", "2", RLEF, "train",
         "--service-url", service_url, "--model", tiny, "--data", "synthetic",
         "--out-dir", str(tmp_path), "--steps", "2", "--set", "fsdp=true",
         "--set", "problems_per_step=6", "--set", "max_new_tokens=12", "--set", "minibatch=4",
         "--set", "checkpoint_every=0", "--set", "lr=1e-3"],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    ranks = json.loads((tmp_path / "ranks.json").read_text())
    a, b = ranks["weight_checksums"]
    assert a == b
    from transformers import AutoModelForCausalLM

    total = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(tmp_path / "final")
                .parameters())
    start = AutoModelForCausalLM.from_pretrained(tiny)
    assert all(0.4 * total < held < 0.65 * total for held in ranks["parameters_held"])
    final = AutoModelForCausalLM.from_pretrained(tmp_path / "final")
    assert any(not torch.equal(p, q) for p, q in zip(final.parameters(), start.parameters(),
                                                     strict=True))
