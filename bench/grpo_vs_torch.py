#!/usr/bin/env python3
"""Side-by-side time of one LR-GRPO micro-step: `latentr3 bench grpo` against the official trainer in PyTorch.

One micro-step is one advantage pool: 2 prompts (groups) x K = 8 noisy latents, LatentRATT trainable, the LLM
frozen. The reference does what the official R3 LR-GRPO trainer does per micro-step (HF transformers, float32):
  1. generation (no gradient), per group: the K samples as K rows of the full sequence [prompt, <|Thought|>,
     target]; pass 1 over the whole sequence, LatentRATT gives r, r + eps_k (eps_1 = 0), pass 2 over the whole
     sequence with r + eps_k in place of the thought embedding; the reward is -PPL of the target;
  2. the batch advantage over the 2 groups: (s - mean of the un-noised rewards) / (L2 norm + 1e-6);
  3. the loss forward again, with gradients, per group (pass 1 + LatentRATT + pass 2 over the whole sequence),
     the clipped surrogate with rho = exp(logp - logp.detach()) (num_iterations = 1), token mean per group, mean
     over the groups; backward; AdamW on LatentRATT.
Our side (`latentr3 bench grpo`) computes the same rewards, advantages, loss and update, with pass 1 over each
prompt once, the K samples sharing its KV cache, pass 2 over the target tokens only, and the log-probs of the
generation reused as the old ones (identical values; see crates/r3-grpo, the golden test).

Both sides get the same prompts and noise: `latentr3 bench grpo --dump-batch F` writes the prompt and target
ids of the 2 CDs samples it used, the thought id and the noise of its first micro-step. The script also times one
original-GRPO micro-step of ours (`--algorithm grpo`: constrained rollouts over the item trie, exact-match
rewards) to compare the two algorithms' cost (the paper: LR-GRPO costs about 1/5).

It prints a Markdown table: median micro-step seconds of ours and of torch, their ratio (torch / ours: > 1 means
ours is faster), and ours original-GRPO / ours LR-GRPO.

    cargo build -p r3-cli        # or --release; pass --bin accordingly
    /tmp/venv/bin/python bench/grpo_vs_torch.py --models smollm2-135m qwen2.5-coder-0.5b
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    add_thought_row, append_json_line, gguf_path, load_gguf, reference_in_child, require_binary, run_bench_json,
    step_parser, timed_runs,
)


def ours(binary: Path, model: str, k: int, runs: int, warmup: int, threads: int, extra: list[str]) -> dict:
    """Runs `latentr3 bench grpo ... --json` and returns its JSON line."""
    cmd = [str(binary), "bench", "grpo", "--model", model, "--k", str(k), "--runs", str(runs),
           "--warmup", str(warmup), "--json", *extra]
    return run_bench_json(cmd, threads)


def torch_step_time(model_id: str, batch_file: Path, runs: int, warmup: int, threads: int) -> dict:
    import torch
    from sft_vs_torch import LatentRatt

    torch.set_num_threads(threads)
    data = json.load(open(batch_file))
    samples, thought_id, k = data["samples"], data["thought_id"], data["k"]
    model, _ = load_gguf(gguf_path(model_id))
    add_thought_row(model, thought_id)
    for p in model.parameters():
        p.requires_grad_(False)  # the LLM is frozen in LR-GRPO
    d = model.config.hidden_size
    ratt = LatentRatt(torch, d)
    opt = torch.optim.AdamW(list(ratt.parameters()), lr=1e-6, weight_decay=0.0)
    g = len(samples)
    noise = torch.tensor(data["noise"], dtype=torch.float32).reshape(g, k, d)

    # One group = K identical rows of the full sequence (no padding within a group).
    groups = []
    for s in samples:
        ids = torch.tensor([s["prompt_ids"] + [thought_id] + s["target_ids"]] * k)
        groups.append((ids, len(s["prompt_ids"]), len(s["target_ids"])))

    def target_logp(ids, t, n, eps):
        """Two full passes over [prompt, thought, target]; per-token log-probs of the target [K, n]."""
        hidden = model(input_ids=ids, output_hidden_states=True).hidden_states[-1]
        mask = torch.ones(ids.shape, dtype=torch.long)
        r = ratt(hidden, t, mask) + eps  # [K, d]
        embeds = model.get_input_embeddings()(ids)
        embeds = torch.cat([embeds[:, :t], r[:, None, :], embeds[:, t + 1:]], dim=1)
        logits = model(inputs_embeds=embeds).logits[:, t:t + n]  # positions predicting the target
        return logits.log_softmax(-1).gather(-1, ids[:, t + 1:t + 1 + n, None])[..., 0]

    results = []  # (loss, rewards) of every call, warm-up included

    def step():
        with torch.no_grad():
            rewards = torch.stack([-(-target_logp(ids, t, n, noise[i]).mean(-1)).exp()
                                   for i, (ids, t, n) in enumerate(groups)])  # [G, K]
        base = rewards[:, 0].mean()
        centred = rewards - base
        adv = centred / (centred.norm() + 1e-6)
        opt.zero_grad(set_to_none=True)
        loss = 0.0
        for i, (ids, t, n) in enumerate(groups):
            logp = target_logp(ids, t, n, noise[i])
            ratio = (logp - logp.detach()).exp()
            a = adv[i][:, None]
            per_token = -torch.min(ratio * a, ratio.clamp(0.8, 1.28) * a)
            loss = loss + per_token.mean() / g
        loss.backward()
        opt.step()
        results.append((float(loss), rewards))

    times = timed_runs(step, runs, warmup)
    loss, rewards = results[-1][0], results[0][1].flatten().tolist()
    return {"median_s": statistics.median(times), "loss": loss, "rewards_first_step": rewards}


def main() -> None:
    ap = step_parser(__doc__.split("\n\n")[0], lambda p: p.add_argument("--k", type=int, default=8))
    args = ap.parse_args()
    require_binary(args.bin)

    rows = []
    for model_id in args.models:
        load = os.getloadavg()[0]
        with tempfile.NamedTemporaryFile(suffix=".json") as f:
            mine = ours(args.bin, model_id, args.k, args.runs, args.warmup, args.threads,
                        ["--dump-batch", f.name])
            grpo = ours(args.bin, model_id, args.k, args.runs, args.warmup, args.threads, ["--algorithm", "grpo"])
            theirs = reference_in_child("grpo_vs_torch", model_id, Path(f.name), args.runs, args.warmup, args.threads)
        row = {"model": model_id, "k": args.k, "ours_s": mine["median_s"], "torch_s": theirs["median_s"],
               "ratio": theirs["median_s"] / mine["median_s"], "ours_grpo_s": grpo["median_s"],
               "grpo_over_lr_grpo": grpo["median_s"] / mine["median_s"], "ours_loss_last": mine["loss"],
               "torch_loss_last": theirs["loss"], "torch_rewards_first": theirs["rewards_first_step"],
               "load_before": load, "threads": args.threads}
        rows.append(row)
        append_json_line(args.json_out, row)

    print("| model | prompts × K | ours LR-GRPO s | torch LR-GRPO s | torch / ours | ours GRPO s | GRPO / LR-GRPO |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | 2 × {r['k']} | {r['ours_s']:.2f} | {r['torch_s']:.2f} | {r['ratio']:.2f} | "
              f"{r['ours_grpo_s']:.2f} | {r['grpo_over_lr_grpo']:.2f} |")


if __name__ == "__main__":
    main()
