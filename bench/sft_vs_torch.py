#!/usr/bin/env python3
"""Side-by-side time of one LatentR3 SFT step: `latentr3 bench sft` against the official semantics in PyTorch.

The reference step is what the official R3 trainer does per batch (HF transformers, float32, CPU):
  1. pass 1: the LLM over the whole left-padded sequence [prompt, <|Thought|>, target] with hidden states;
  2. LatentRATT (one head over the full width d, q/k/v with biases, RoPE base 1000 over the whole vector,
     rotate-half) from the final-norm hidden state of the last prompt token to the positions before the thought;
  3. pass 2: the LLM over the same sequence with the thought's input embedding replaced by r;
  4. cross-entropy over the target tokens, backward through everything, AdamW (lr 3e-4, weight decay 0) and
     global grad-norm clipping at 1.0.
Our side (`latentr3 bench sft`) computes the same loss and update, with the prompt prefix computed once and its
KV cache reused by pass 2 (identical results, see crates/r3-latent).

Both sides get exactly the same batch: `latentr3 bench sft --dump-batch F` writes the prompt and target ids of
the 8 CDs samples it used (and the thought id); this script reads them. It prints a Markdown table with the
median step time of both, their ratio (torch / ours: > 1 means ours is faster), target tokens/s and the peak
resident memory of both processes.

Setup: see bench/README.md (same environment as prefill_vs_torch.py), then
    cargo build --release -p r3-cli
    .venv/bin/python bench/sft_vs_torch.py --models smollm2-135m qwen2.5-coder-0.5b
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    add_thought_row, append_json_line, gguf_path, load_gguf, reference_in_child, require_binary, run_bench_json,
    step_parser, timed_runs,
)


def ours(binary: Path, model: str, batch: int, runs: int, warmup: int, threads: int, dump: Path) -> dict:
    """Runs `latentr3 bench sft ... --json --dump-batch FILE` and returns its JSON line plus its peak RSS."""
    cmd = [str(binary), "bench", "sft", "--model", model, "--batch", str(batch), "--runs", str(runs),
           "--warmup", str(warmup), "--json", "--dump-batch", str(dump)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = run_bench_json(cmd, threads)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of the children is the largest child so far: only meaningful when it grew.
    result["peak_rss_mb_measured"] = peak / 1024 if peak > before else None
    return result


class LatentRatt:
    """LatentRATT as docs/method.md section 3 [CODE]: q/k/v d x d with biases, RoPE base 1000 over the whole vector."""

    def __init__(self, torch, d: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.torch = torch
        self.q = torch.nn.Linear(d, d)
        self.k = torch.nn.Linear(d, d)
        self.v = torch.nn.Linear(d, d)
        for lin in (self.q, self.k, self.v):
            with torch.no_grad():
                lin.weight.normal_(0.0, 0.02, generator=g)
                lin.bias.zero_()
        self.d = d
        self.inv_freq = 1.0 / (1000.0 ** (torch.arange(0, d, 2, dtype=torch.float32) / d))

    def parameters(self):
        for lin in (self.q, self.k, self.v):
            yield from lin.parameters()

    def rope(self, x, pos):
        torch = self.torch
        freqs = pos[:, :, None].float() * self.inv_freq[None, None, :]  # [B, L, d/2]
        emb = torch.cat([freqs, freqs], dim=-1)
        cos, sin = emb.cos(), emb.sin()
        half = self.d // 2
        rot = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rot * sin

    def __call__(self, hidden, t: int, mask):
        """hidden [B, L, d] (final-norm states), t the thought column, mask [B, L] (1 = real): r [B, d]."""
        torch = self.torch
        h = hidden[:, :t]  # keys/values: positions < t
        b, length, _ = h.shape
        pos = torch.arange(length)[None, :].expand(b, length)
        q = self.rope(self.q(h[:, -1:]), pos[:, -1:])  # [B, 1, d]
        k = self.rope(self.k(h), pos)  # [B, t, d]
        v = self.v(h)
        scores = (q @ k.transpose(1, 2)) / self.d ** 0.5  # [B, 1, t]
        scores = scores.masked_fill(mask[:, None, :t] == 0, float("-inf"))
        return (scores.softmax(-1) @ v)[:, 0]  # [B, d]


def torch_step_time(model_id: str, batch_file: Path, runs: int, warmup: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    data = json.load(open(batch_file))
    samples, thought_id = data["samples"], data["thought_id"]
    model, _ = load_gguf(gguf_path(model_id))
    add_thought_row(model, thought_id)
    model.train()
    ratt = LatentRatt(torch, model.config.hidden_size)

    # One left-padded batch [pad, prompt, thought, target]: the thought sits at one column t for every row only
    # if the prompt+thought parts are aligned, so pad prompts on the left and targets on the right.
    p = max(len(s["prompt_ids"]) for s in samples)
    tl = max(len(s["target_ids"]) for s in samples)
    ids, mask, labels = [], [], []
    for s in samples:
        pad_l, pad_r = p - len(s["prompt_ids"]), tl - len(s["target_ids"])
        ids.append([0] * pad_l + s["prompt_ids"] + [thought_id] + s["target_ids"] + [0] * pad_r)
        mask.append([0] * pad_l + [1] * (len(s["prompt_ids"]) + 1 + len(s["target_ids"])) + [0] * pad_r)
        labels.append([-100] * (p + 1) + s["target_ids"] + [-100] * pad_r)
    ids, mask, labels = torch.tensor(ids), torch.tensor(mask), torch.tensor(labels)
    t = p  # the thought column
    params = list(model.parameters()) + list(ratt.parameters())
    opt = torch.optim.AdamW(params, lr=3e-4, weight_decay=0.0)
    n_tokens = int((labels != -100).sum())

    def step():
        out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        hidden = out.hidden_states[-1]  # the final-norm output
        r = ratt(hidden, t, mask)
        embeds = model.get_input_embeddings()(ids)
        embeds = torch.cat([embeds[:, :t], r[:, None, :], embeds[:, t + 1:]], dim=1)
        logits = model(inputs_embeds=embeds, attention_mask=mask).logits
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                                 labels[:, 1:].reshape(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss.item()

    times = timed_runs(step, runs, warmup)
    return {"median_s": statistics.median(times), "times_s": times, "target_tokens": n_tokens, "tokens": int(mask.sum()),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    # Two untimed steps on both sides: our second step still grows the heap for the optimizer's moments (see
    # `latentr3 bench sft --help`); from the third on both measure the steady state of a training run.
    ap = step_parser(__doc__.split("\n\n")[0], lambda p: p.add_argument("--batch", type=int, default=8), warmup=2)
    args = ap.parse_args()
    require_binary(args.bin)

    rows = []
    for model_id in args.models:
        load = os.getloadavg()[0]
        with tempfile.NamedTemporaryFile(suffix=".json") as f:
            mine = ours(args.bin, model_id, args.batch, args.runs, args.warmup, args.threads, Path(f.name))
            # The reference runs in a child process so that its peak memory is its own.
            theirs = reference_in_child("sft_vs_torch", model_id, Path(f.name), args.runs, args.warmup, args.threads)
        row = {"model": model_id, "batch": args.batch, "ours_s": mine["median_s"], "torch_s": theirs["median_s"],
               "ratio": theirs["median_s"] / mine["median_s"], "ours_peak_mb": mine.get("peak_rss_mb"),
               "torch_peak_mb": theirs["peak_rss_mb"], "target_tokens": theirs["target_tokens"],
               "tokens": theirs["tokens"], "load_before": load, "warmup": args.warmup,
               "ours_times_s": mine["times_s_sorted"], "torch_times_s": sorted(theirs["times_s"])}
        rows.append(row)
        append_json_line(args.json_out, row)

    print("| model | batch | ours s/step | torch s/step | torch / ours | ours peak MB | torch peak MB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['batch']} | {r['ours_s']:.2f} | {r['torch_s']:.2f} | {r['ratio']:.2f} | "
              f"{r['ours_peak_mb'] or float('nan'):.0f} | {r['torch_peak_mb']:.0f} |")
    for r in rows:
        ours_t = ", ".join(f"{t:.2f}" for t in r["ours_times_s"])
        torch_t = ", ".join(f"{t:.2f}" for t in r["torch_times_s"])
        print(f"{r['model']}: timed steps after {r['warmup']} untimed, sorted (s): ours {ours_t}; torch {torch_t}")


if __name__ == "__main__":
    main()
