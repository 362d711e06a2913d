"""Trainer: next-token loss + lambda * MTP loss, AdamW with warmup and cosine decay, gradient
clipping and accumulation, selectable expert load balancing, held-out evaluation, resumable
checkpoints in the HF layout (with the tokenizer files beside them)."""
from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from model_runtime.config import ModelConfig
from model_runtime.loader.load import load_model
from model_runtime.loader.save import save_checkpoint
from model_runtime.model import DeepseekV3ForCausalLM
from model_runtime.tokenizer import CHAT_TEMPLATE_FILE, TOKENIZER_CONFIG_FILE, TOKENIZER_FILE
from model_runtime.training.balance import MODES, aux_balance_loss, expert_loads, max_violation, update_bias
from model_runtime.training.corpus import TokenStream


@dataclass
class TrainConfig:
    corpus: str
    out: str
    model_config: str | None = None  # config.json for training from scratch
    init_from: str | None = None  # checkpoint directory to fine-tune
    tokenizer_dir: str | None = None  # copied into every checkpoint
    steps: int = 1000
    batch_size: int = 8
    seq_len: int = 256
    grad_accum: int = 1
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    mtp_lambda: float = 0.3
    balance: str = "loss_free"
    bias_gamma: float = 0.001
    aux_alpha: float = 0.01
    eval_every: int = 200
    eval_batches: int = 20
    save_every: int = 500
    seed: int = 0
    autocast: str = "none"  # "bf16": torch.autocast on CPU
    num_threads: int | None = None
    resume: bool = False

    def __post_init__(self) -> None:
        if (self.model_config is None) == (self.init_from is None):
            raise ValueError("give exactly one of model_config (from scratch) or init_from (fine-tune)")
        if self.balance not in MODES:
            raise ValueError(f"balance must be one of {MODES}")
        if self.autocast not in ("none", "bf16"):
            raise ValueError("autocast must be none or bf16")
        if self.steps < 1 or self.batch_size < 1 or self.seq_len < 4 or self.grad_accum < 1:
            raise ValueError("steps, batch_size, grad_accum must be >= 1 and seq_len >= 4")


def init_weights(model: DeepseekV3ForCausalLM, seed: int) -> None:
    """N(0, 0.02) for projections and embeddings, residual outputs scaled by 1/sqrt(2 layers)."""
    gen = torch.Generator().manual_seed(seed)
    depth_scale = 1 / math.sqrt(2 * model.config.num_hidden_layers)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.fill_(1.0)  # RMSNorm weights
            else:
                std = 0.02 * (depth_scale if name.endswith(("o_proj.weight", "down_proj.weight")) else 1.0)
                p.copy_(torch.randn(p.shape, generator=gen) * std)
        for name, b in model.named_buffers():
            if name.endswith("e_score_correction_bias"):
                b.zero_()


class Trainer:
    def __init__(self, config: TrainConfig):
        self.cfg = config
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        torch.manual_seed(config.seed)
        self.out = Path(config.out)
        self.out.mkdir(parents=True, exist_ok=True)
        if config.init_from:
            self.model = load_model(config.init_from, dtype=torch.float32)
        else:
            model_config = ModelConfig.from_dict(json.loads(Path(config.model_config).read_text()))
            self.model = DeepseekV3ForCausalLM(model_config)
            init_weights(self.model, config.seed)
        self.model_config = self.model.config
        self.model.train()
        self.train_data = TokenStream(config.corpus, "train")
        self.heldout = TokenStream(config.corpus, "heldout")
        if self.train_data.vocab_size > self.model_config.vocab_size:
            raise ValueError(f"corpus vocab {self.train_data.vocab_size} > model vocab {self.model_config.vocab_size}")
        decay = [p for p in self.model.parameters() if p.dim() >= 2]
        no_decay = [p for p in self.model.parameters() if p.dim() < 2]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=config.lr, betas=(0.9, 0.95), eps=1e-8,
        )
        self.rng = np.random.default_rng(config.seed)
        self.step = 0
        self.log_path = self.out / "train_log.jsonl"
        if config.resume and (self.out / "trainer_state.pt").is_file():
            self._load_state()

    # ---- schedule ------------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        c = self.cfg
        if step < c.warmup_steps:
            return c.lr * (step + 1) / c.warmup_steps
        progress = (step - c.warmup_steps) / max(1, c.steps - c.warmup_steps)
        return c.lr * (c.min_lr_ratio + (1 - c.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))

    # ---- losses --------------------------------------------------------------------------
    def losses(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """batch [B, T+1] -> main next-token loss, MTP (t+2) loss, and MTP greedy agreement."""
        ids, targets = batch[:, :-1], batch[:, 1:]
        b, t = ids.shape
        positions = torch.arange(t).expand(b, -1)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.cfg.autocast == "bf16"):
            h = self.model.hidden_states(ids, positions)  # [B, T, hidden]
            logits = self.model.lm_head(h).float()
            main = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
            out = {"main": main, "loss": main}
            if self.model.mtp_layers:
                # MTP at position i: h_i and embed(t_{i+1}) -> t_{i+2}
                h_mtp = self.model.mtp_hidden(0, h[:, :-1], ids[:, 1:], positions[:, :-1])
                mtp_logits = self.model.mtp_logits(0, h_mtp).float()  # [B, T-1, V]
                mtp = F.cross_entropy(mtp_logits.reshape(-1, mtp_logits.shape[-1]), targets[:, 1:].reshape(-1))
                out["mtp"] = mtp
                out["loss"] = main + self.cfg.mtp_lambda * mtp
                # a draft of t_{i+2} is accepted when it equals the main model's greedy choice there
                out["mtp_accept"] = (mtp_logits.argmax(-1) == logits[:, 1:].argmax(-1)).float().mean()
        return out

    # ---- loop ----------------------------------------------------------------------------
    def train(self, until: int | None = None) -> dict:
        """Train to `cfg.steps` (or stop early at step `until`, as an interrupted run would)."""
        c = self.cfg
        until = c.steps if until is None else min(until, c.steps)
        bar = tqdm(total=c.steps, initial=self.step, desc="train", unit="step", mininterval=5)
        tokens_per_step = c.batch_size * c.seq_len * c.grad_accum
        started, started_step = time.perf_counter(), self.step
        last_eval: dict = {}
        while self.step < until:
            lr = self.lr_at(self.step)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            loads = None
            totals: dict[str, float] = {}
            for _ in range(c.grad_accum):
                batch = torch.from_numpy(self.train_data.random_batch(self.rng, c.batch_size, c.seq_len + 1))
                out = self.losses(batch)
                loss = out["loss"]
                if c.balance == "aux_loss":
                    loss = loss + aux_balance_loss(self.model, c.aux_alpha)
                (loss / c.grad_accum).backward()
                step_loads = expert_loads(self.model)
                loads = step_loads if loads is None else loads + step_loads
                for k, v in out.items():
                    totals[k] = totals.get(k, 0.0) + float(v.detach()) / c.grad_accum
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip))
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            if c.balance == "loss_free":
                update_bias(self.model, loads, c.bias_gamma)
            self.step += 1
            elapsed = time.perf_counter() - started
            tok_s = (self.step - started_step) * tokens_per_step / max(elapsed, 1e-9)
            record = {"step": self.step, "lr": lr, "grad_norm": grad_norm, "tokens_per_s": tok_s,
                      "max_vio": float(max_violation(loads).mean()), **totals}
            bar.set_postfix(loss=f"{totals['loss']:.3f}", tok_s=f"{tok_s:.0f}", maxvio=f"{record['max_vio']:.2f}")
            bar.update(1)
            if self.step % c.eval_every == 0 or self.step == c.steps:
                last_eval = self.evaluate()
                record.update({f"eval_{k}": v for k, v in last_eval.items() if k != "max_vio_per_layer"})
                tqdm.write(f"step {self.step}: heldout {json.dumps({k: round(v, 4) for k, v in last_eval.items() if isinstance(v, float)})}")
            with self.log_path.open("a") as f:
                f.write(json.dumps(record) + "\n")
            if self.step % c.save_every == 0 or self.step == c.steps:
                self.save()
        bar.close()
        return last_eval

    @torch.no_grad()
    def evaluate(self) -> dict:
        """Held-out main/MTP loss, MTP acceptance, and MaxVio over the whole held-out set."""
        c = self.cfg
        self.model.eval()
        sums: dict[str, float] = {}
        loads, n = None, 0
        for batch in self.heldout.sequential_batches(c.batch_size, c.seq_len + 1, c.eval_batches):
            out = self.losses(torch.from_numpy(batch))
            for k, v in out.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            step_loads = expert_loads(self.model)
            loads = step_loads if loads is None else loads + step_loads
            n += 1
        self.model.train()
        result = {k: v / max(n, 1) for k, v in sums.items()}
        if loads is not None:
            per_layer = max_violation(loads)
            result["max_vio"] = float(per_layer.mean())
            result["max_vio_per_layer"] = [round(float(x), 4) for x in per_layer]
        return result

    # ---- checkpoints ---------------------------------------------------------------------
    def save(self, path: Path | None = None, dtype: torch.dtype = torch.float32) -> Path:
        path = path or self.out / "checkpoint"
        tmp = path.with_name(path.name + ".tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        save_checkpoint(self.model, self.model_config, tmp, dtype=dtype)
        if self.cfg.tokenizer_dir:
            for name in (TOKENIZER_FILE, TOKENIZER_CONFIG_FILE, CHAT_TEMPLATE_FILE):
                src = Path(self.cfg.tokenizer_dir) / name
                if src.is_file():
                    shutil.copy(src, tmp / name)
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
        if path == self.out / "checkpoint":
            state = {"step": self.step, "optimizer": self.optimizer.state_dict(),
                     "torch_rng": torch.get_rng_state(), "data_rng": self.rng.bit_generator.state,
                     "config": asdict(self.cfg)}
            torch.save(state, self.out / "trainer_state.pt.tmp")
            (self.out / "trainer_state.pt.tmp").rename(self.out / "trainer_state.pt")
        return path

    def _load_state(self) -> None:
        resumed = load_model(self.out / "checkpoint", dtype=torch.float32)
        self.model.load_state_dict(resumed.state_dict())
        self.model.train()
        state = torch.load(self.out / "trainer_state.pt", weights_only=False)
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        self.rng.bit_generator.state = state["data_rng"]
        self.step = state["step"]
