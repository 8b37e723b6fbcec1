"""Resuming sharded training. Under FSDP each process holds only shards of the optimizer's moments (DTensors
that safetensors cannot write: a launch under FSDP once failed at its first checkpoint), so a checkpoint gathers
them whole, keyed by parameter name, and a resumed run puts them back into its shards. On the CPU, one process
of a gloo group shards the way FSDP2 does on GPUs; the resumed optimizer takes the same next step as the
uninterrupted one. Under DeepSpeed the moments restart but the schedule continues."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
from safetensors import SafetensorError
from torch.distributed.fsdp import fully_shard

from vlit.disk import save_safetensors
from vlit.training.checkpoint import gather_optimizer, load_optimizer, write_optimizer


@pytest.fixture
def process_group(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def _sharded(seed: int = 0, weights: dict[str, torch.Tensor] | None = None
             ) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """A small model sharded by FSDP2 and its optimizer; `weights` loaded before sharding, as a resumed run loads
    its checkpoint's before `accelerate.prepare` shards the model."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.GELU(), torch.nn.Linear(8, 3))
    if weights is not None:
        model.load_state_dict(weights, strict=True)
    model[2].weight.requires_grad_(False)  # frozen and trainable parameters in one sharded layer
    for layer in (model[0], model[2]):
        fully_shard(layer)
    fully_shard(model)
    return model, torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)


def _step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, seed: int) -> None:
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(seed))
    model(x).square().mean().backward()
    optimizer.step()
    optimizer.zero_grad()


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.full_tensor().clone() for k, v in model.state_dict().items()}  # one process: a view of the shard


# safetensors reads a DTensor's storage through torch's deprecated TypedStorage before it fails.
@pytest.mark.filterwarnings("ignore:TypedStorage is deprecated")
def test_sharded_moments_are_gathered_saved_and_resumed_exactly(process_group, tmp_path):
    model, optimizer = _sharded()
    for seed in range(3):
        _step(model, optimizer, seed)
    shards = optimizer.state_dict()["state"][0]["exp_avg"]
    assert type(shards).__name__ == "DTensor"
    with pytest.raises((RuntimeError, SafetensorError)):  # what the first FSDP checkpoint did
        save_safetensors({"exp_avg": shards}, tmp_path / "shards.safetensors")
    write_optimizer(tmp_path, gather_optimizer(model, optimizer))
    saved = _weights(model)
    _step(model, optimizer, 3)

    resumed, resumed_optimizer = _sharded(seed=1, weights=saved)  # no moments, until restored
    load_optimizer(resumed_optimizer, tmp_path, resumed)
    _step(resumed, resumed_optimizer, 3)
    expected, got = _weights(model), _weights(resumed)
    for name in expected:
        assert torch.equal(expected[name], got[name]), name
    assert resumed_optimizer.state_dict()["state"][0]["step"].item() == 4

    # The same checkpoint resumes on one process, unsharded.
    torch.manual_seed(2)
    plain = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.GELU(), torch.nn.Linear(8, 3))
    plain.load_state_dict(saved)
    plain[2].weight.requires_grad_(False)
    plain_optimizer = torch.optim.AdamW([p for p in plain.parameters() if p.requires_grad], lr=1e-2)
    load_optimizer(plain_optimizer, tmp_path, plain)
    _step(plain, plain_optimizer, 3)
    for name, value in plain.state_dict().items():
        assert torch.equal(expected[name], value), name


def test_moments_saved_by_index_load_as_before(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model(torch.ones(1, 4)).sum().backward()
    optimizer.step()
    write_optimizer(tmp_path, optimizer.state_dict())
    fresh = torch.optim.AdamW(model.parameters(), lr=1e-2)
    load_optimizer(fresh, tmp_path)
    for index, slots in optimizer.state_dict()["state"].items():
        for name, value in slots.items():
            assert torch.equal(value, fresh.state_dict()["state"][index][name]), (index, name)


def test_without_the_moments_the_schedule_still_continues(tmp_path):
    """DeepSpeed keeps its moments in its own partitions: a resumed run restarts them, but its learning rates
    continue the schedule from the step it stopped at (they restarted from the first warmup step before)."""
    import json

    from transformers import get_cosine_schedule_with_warmup

    from vlit.training.checkpoint import STATE_FILE, restore_training, rng_state

    def schedule():
        optimizer = torch.optim.AdamW(torch.nn.Linear(2, 2).parameters(), lr=1e-3)
        return optimizer, get_cosine_schedule_with_warmup(optimizer, 4, 20)

    optimizer, scheduler = schedule()
    for _ in range(7):
        optimizer.step()
        scheduler.step()
    tensors, plain = rng_state()
    save_safetensors(tensors, tmp_path / "rng.safetensors")
    (tmp_path / STATE_FILE).write_text(json.dumps({"scheduler": scheduler.state_dict(), "rng": plain}))
    resumed_optimizer, resumed = schedule()
    restore_training(tmp_path, None, resumed)
    assert resumed_optimizer.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"] > 0  # a fresh one: 0
    for opt, sched in ((optimizer, scheduler), (resumed_optimizer, resumed)):
        opt.step()
        sched.step()
    assert resumed_optimizer.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]
