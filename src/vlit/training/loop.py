"""The one training loop, on Hugging Face Accelerate: one process on a laptop, DDP / FSDP / DeepSpeed across
GPUs and nodes by an Accelerate config. Stages run in order; each says what learns; checkpoints resume
exactly (weights, optimizer, schedule, data position, RNG)."""

from __future__ import annotations

import dataclasses
import logging
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType, set_seed
from tqdm.auto import tqdm

from vlit.assets import cache_root
from vlit.config import Config, ConfigError, StageConfig, save_yaml
from vlit.data.loading.batch import Batch
from vlit.data.loading.batching import padding_fraction
from vlit.data.loading.processor import Processor
from vlit.disk import write_failed
from vlit.errors import VlitError
from vlit.models.build import build_model
from vlit.models.feature_cache import FeatureCache, encoder_key
from vlit.models.saving import load_init, load_part, save_model
from vlit.models.vlm import VisionLanguageModel
from vlit.training.accelerator import make_accelerator
from vlit.training.checkpoint import (
    gather_optimizer,
    latest_checkpoint,
    read_trainer_state,
    restore_heads,
    restore_model,
    restore_training,
    resume_checkpoint,
    save_checkpoint,
)
from vlit.training.qformer_objective import TEXT, QFormerObjective
from vlit.training.report import MetricsLog, plot_loss
from vlit.training.stages import apply_stage, build_optimizer, build_scheduler, stage_processor, stage_steps
from vlit.training.stream import ConsumedBatches, StageStream

log = logging.getLogger(__name__)


class Trainer:
    def __init__(self, cfg: Config, out: Path, accelerator: Accelerator | None = None):
        self.cfg = cfg
        self.out = Path(out)
        self.acc = accelerator or make_accelerator(cfg)
        self.model: VisionLanguageModel | None = None
        self._wrapped = None  # the model as Accelerate prepared it (DDP, FSDP or DeepSpeed wrapper)

    def _prepare_data(self) -> Path:
        root = Path(self.cfg.data.root)
        if self.cfg.data.build == "quickstart" and not (root / "manifest.json").exists():
            with self.acc.main_process_first():
                if self.acc.is_main_process:
                    from vlit.data.sources.build import build_quickstart

                    build_quickstart(root, seed=self.cfg.train.seed, scale=self.cfg.data.build_scale)
        return root

    def run(self, resume: bool = False) -> Path:
        """Train every stage; returns the final checkpoint folder (`out/model`)."""
        cfg, acc = self.cfg, self.acc
        set_seed(cfg.train.seed)
        # The model first: what it refuses is refused before any data is built or folder written, and its
        # initial weights do not depend on whether this run had the data to build.
        model, processor = build_model(cfg.model)
        if cfg.train.packing and model.seq2seq:
            raise ConfigError("train.packing: rows are packed for a decoder-only LLM; this one is an "
                              "encoder-decoder (its encoder and decoder lengths differ per row)")
        root = self._prepare_data()
        if acc.is_main_process:
            self.out.mkdir(parents=True, exist_ok=True)
            save_yaml(cfg, self.out / "config.yaml")
        self.model = model
        # Started from a checkpoint (an import, an earlier run): its weights, and its stored parts are stored
        # again by this run (they cannot be rebuilt from a reference).
        initial = load_init(model, cfg.model.init_from) if cfg.model.init_from else []
        checkpoint = resume_checkpoint(self.out) if resume else None
        state = read_trainer_state(checkpoint) if checkpoint else {}
        if checkpoint:
            restore_model(checkpoint, model)
            log.info("resuming from %s (step %d)", checkpoint, state["global_step"])
        metrics = MetricsLog(self.out / "metrics.jsonl", state.get("global_step") if checkpoint else None)
        trained = sorted(set(state.get("trained", [])) | set(initial))
        cache = self._feature_cache(model, processor)
        global_step = state.get("global_step", 0)
        first = state.get("stage_index", 0)
        for index, stage in enumerate(cfg.stages):
            if index < first:
                continue
            if index > first and acc.distributed_type == DistributedType.FSDP:
                # FSDP2 fixes each sharded layer's dtypes at its first forward from the parameters that train
                # then, so a layer frozen in the stage before (stage 2's LoRA or LLM) would get gradients in the
                # wrong dtype. A later stage shards a fresh model instead, loaded from the checkpoint the stage
                # before ended with: what `--resume` from that boundary does.
                model, _ = build_model(cfg.model)
                restore_model(latest_checkpoint(self.out), model)
                self.model, cache = model, self._feature_cache(model, processor)
            resume_state = state if checkpoint and index == state["stage_index"] else None
            global_step = self._run_stage(index, stage, model, processor, root, cache, metrics, trained,
                                          global_step, checkpoint if resume_state else None, resume_state)
            trained = sorted(set(trained) | set(stage.train))
        final = self.out / "model"
        full = self._full_state()
        if acc.is_main_process:
            try:
                save_model(model, final, trained=trained, state=full, extra={"trained_parts": trained})
            except OSError as e:
                last = latest_checkpoint(self.out)
                raise write_failed("the final model", final, e, f"rerun with --resume: it writes the model again "
                                   f"from {last.name if last else 'the last checkpoint'}") from None
            rows = metrics.rows()
            if rows:
                plot_loss(rows, self.out / "loss.png", f"{self.out.name}: training loss")
        acc.wait_for_everyone()
        return final

    def _run_stage(self, index: int, stage: StageConfig, model: VisionLanguageModel, processor: Processor,
                   root: Path, cache: FeatureCache | None, metrics: MetricsLog, trained: list[str],
                   global_step: int, checkpoint: Path | None, state: dict | None) -> int:
        acc, cfg = self.acc, self.cfg
        if state is None:  # a stage resumed midway already has what it loaded, and has trained it since
            for part, source in stage.load.items():
                load_part(model, part, source)
        # A `qformer` stage (BLIP-2's first stage) learns from its own forward and heads, without the LLM; its
        # batches carry each image's answer in the Q-Former's tokens instead of the instruction.
        objective = None
        if stage.objective == "qformer":
            if self._sharded():
                raise VlitError(f"stages[{index}].objective: 'qformer' trains on one process or under DDP, not "
                                f"{acc.distributed_type} (its heads are no part of the sharded model)")
            objective = QFormerObjective(model.vision, model.connector, stage.qformer)
        counts = apply_stage(model, stage)
        use_cache = cache is not None and "vision" not in stage.train
        builders = objective.side_inputs() if objective else None
        stream = StageStream(stage, root, stage_processor(processor, stage, builders), cfg.train.seed + index,
                             acc.process_index, acc.num_processes, cfg.train.group_by_length, cfg.train.group_size,
                             cfg.train.num_workers, with_pixels=not use_cache)
        total = stage_steps(stage, stream.total_rows, acc.num_processes)
        heads = objective.heads if objective else None
        optimizer = build_optimizer(model, stage, heads)
        scheduler = build_scheduler(optimizer, stage, total)
        step = 0
        resuming = checkpoint is not None and state is not None
        # A checkpoint at a stage boundary holds no optimizer of this stage, only the RNG to continue with.
        # DeepSpeed keeps its moments in its own partitions, which a checkpoint does not gather.
        keep_optimizer = bool(resuming and state["data"]) and acc.distributed_type != DistributedType.DEEPSPEED
        if resuming and state["data"] and not keep_optimizer:
            log.warning("resuming under %s: optimizer moments start afresh (its partitions are not gathered "
                        "into checkpoints)", acc.distributed_type)
        if resuming and state["data"]:
            if heads is not None:
                restore_heads(checkpoint, heads)
            stream.load_state_dict(state["data"])
            step = state["stage_step"]
        if acc.is_main_process and step == 0:
            metrics.write({"event": "stage_start", "stage": stage.name, "global_step": global_step,
                           "steps": total, "parameters": {p: {"total": t, "trainable": n}
                                                          for p, (t, n) in counts.items()},
                           "sampling": stream.sampler.probabilities()})
        # A `qformer` stage prepares its objective (connector and heads), so DDP averages the heads' gradients too.
        wrapped, prepared_optimizer = acc.prepare(objective or model, optimizer)
        self._wrapped = wrapped
        if resuming:  # after `prepare`: under FSDP the saved moments go into the shards it made
            restore_training(checkpoint, optimizer if keep_optimizer else None,
                             scheduler if state["data"] else None, model=model)
        batches = ConsumedBatches(iter(stream), state["data"] if state and state["data"] else None)
        bar = tqdm(total=total, initial=step, desc=f"stage {stage.name}", disable=not acc.is_main_process,
                   dynamic_ncols=True)
        window = {"loss": 0.0, "parts": {}, "samples": 0, "tokens": 0, "steps": 0, "wait": 0.0, "padding": [],
                  "start": time.perf_counter()}
        # Closed however the stage ends, so that an error is printed on a line of its own.
        try:
            while step < total:
                loss = self._step(wrapped, prepared_optimizer, stage, batches, cache if use_cache else None, window)
                scheduler.step()
                step += 1
                global_step += 1
                window["loss"] += loss
                window["steps"] += 1
                bar.update(1)
                if step % cfg.train.log_every == 0 or step == total:
                    self._log(metrics, stage, step, global_step, scheduler, window, bar)
                if step == total or (cfg.train.save_every and step % cfg.train.save_every == 0):
                    acc.wait_for_everyone()
                    full = self._full_state()
                    # Collective, like the weights: each process holds only its shards of the moments.
                    moments = gather_optimizer(model, optimizer) if acc.distributed_type == DistributedType.FSDP \
                        else None
                    if acc.is_main_process:
                        trainer_state = {"stage_index": index if step < total else index + 1, "stage_step":
                                         step if step < total else 0, "global_step": global_step,
                                         "data": batches.state if step < total else None}
                        save_checkpoint(self.out, global_step, model, optimizer, scheduler, trainer_state,
                                        sorted(set(trained) | set(stage.train)), cfg.train.keep_last, full,
                                        heads.state_dict() if heads is not None else None, moments)
                    acc.wait_for_everyone()
        finally:
            bar.close()
        batches.close()
        acc.free_memory()
        return global_step

    def _feature_cache(self, model: VisionLanguageModel, processor: Processor) -> FeatureCache | None:
        """The frozen vision features, computed once per image (None when `train.feature_cache` is off)."""
        cfg = self.cfg
        if not cfg.train.feature_cache:
            return None
        if self._sharded():
            # The cache runs the vision tower outside the model's forward, where FSDP and ZeRO-3 have not gathered
            # its sharded weights (on an H200: "got mixed torch.Tensor and DTensor"); the forward encodes instead.
            log.info("train.feature_cache: off under %s (the vision tower's weights are sharded)",
                     self.acc.distributed_type)
            return None
        folder = Path(cfg.train.cache_dir) if cfg.train.cache_dir else cache_root() / "features"
        # float16 on disk and in memory: every consumer, the computing run included, reads stored values.
        return FeatureCache(model, processor, 8192, folder / encoder_key(cfg.model, processor.image_spec),
                            torch.float16)

    def _sharded(self) -> bool:
        return self.acc.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)

    def _full_state(self) -> dict | None:
        """The full weights, gathered from every process, when FSDP or DeepSpeed shard them (a collective:
        every process calls it); None otherwise, where the model's own state dict is complete."""
        return self.acc.get_state_dict(self._wrapped) if self._sharded() and self._wrapped is not None else None

    def _step(self, model, optimizer, stage: StageConfig, batches: ConsumedBatches, cache: FeatureCache | None,
              window: dict) -> float:
        """One optimizer step over `grad_accum` micro-batches; returns the mean micro-batch loss (and adds each
        named loss of the stage's objective, if it has several, to `window["parts"]`)."""
        acc, train = self.acc, self.cfg.train
        total = 0.0
        for micro in range(stage.grad_accum):
            start = time.perf_counter()
            batch = batches.next()
            window["wait"] += time.perf_counter() - start
            # The text the stage's forward reads: the whole prompt, or a `qformer` stage's answers.
            text_mask = batch.side[TEXT].mask if stage.objective == "qformer" and TEXT in batch.side else \
                batch.attention_mask
            lengths = text_mask.sum(1).tolist()
            window["padding"].append(padding_fraction([lengths]))
            batch = self._on_device(batch, cache)
            sync = nullcontext() if micro == stage.grad_accum - 1 else acc.no_sync(model)
            with sync, acc.autocast():
                if stage.objective == "qformer":
                    out = model(batch.image_features, batch.pixel_values, batch.side)
                    parts = out.parts
                else:
                    # Packed where the packed sequence's attention costs less than the padding it saves.
                    pack = train.packing and sum(lengths) <= train.packing_max_tokens
                    out = model(**batch.model_inputs(), loss_per=stage.loss_per, pack=pack)
                    parts = {}
                acc.backward(out.loss / stage.grad_accum)
            total += out.loss.item()
            for name, value in parts.items():
                window["parts"][name] = window["parts"].get(name, 0.0) + value.item() / stage.grad_accum
            window["samples"] += len(batch) * acc.num_processes
            window["tokens"] += sum(lengths) * acc.num_processes
        if stage.max_grad_norm:
            acc.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], stage.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return total / stage.grad_accum

    def _on_device(self, batch: Batch, cache: FeatureCache | None) -> Batch:
        """The batch on this process's device, images as cached features when there is a cache (the workers
        then decoded no pixels)."""
        batch = batch.to(self.acc.device)
        if cache is not None and batch.images:
            features = cache.features(batch.images, self.acc.device, torch.float32)
            batch = dataclasses.replace(batch, image_features=features)
        return batch

    def _log(self, metrics: MetricsLog, stage: StageConfig, step: int, global_step: int, scheduler,
             window: dict, bar) -> None:
        elapsed = max(time.perf_counter() - window["start"], 1e-9)
        loss = torch.tensor(window["loss"] / max(window["steps"], 1), device=self.acc.device)
        loss = float(self.acc.reduce(loss, reduction="mean"))
        steps = max(window["steps"], 1)
        row = {"stage": stage.name, "step": step, "global_step": global_step, "loss": round(loss, 6),
               "lr": {g.get("name", str(i)): g["lr"] for i, g in enumerate(scheduler.optimizer.param_groups)},
               "samples_per_s": round(window["samples"] / elapsed, 3),
               "tokens_per_s": round(window["tokens"] / elapsed, 1),
               "data_wait_s": round(window["wait"] / steps, 5),
               "padding_fraction": round(sum(window["padding"]) / max(len(window["padding"]), 1), 4)}
        for name, value in window["parts"].items():  # a `qformer` stage's itc, itm, itg
            row[name] = round(float(self.acc.reduce(torch.tensor(value / steps, device=self.acc.device),
                                                    reduction="mean")), 6)
        bar.set_postfix(loss=f"{loss:.3f}", samples_s=f"{row['samples_per_s']:.1f}")
        if self.acc.is_main_process:
            metrics.write(row)
        window.update(loss=0.0, parts={}, samples=0, tokens=0, steps=0, wait=0.0, padding=[], start=time.perf_counter())

