#!/usr/bin/env python3
"""How precisely can the LR-GRPO golden rewards be reproduced at all? The reference in f32 and in f64.

The `grpo` entry of `../shared/golden/smollm2/latent_golden.json` stores rewards r = −PPL of the target under
each noisy latent (values from −40 to −153). This script recomputes them with PyTorch + transformers from the
same GGUF file, golden LatentRATT weights and stored noise, once in float32 (the golden's own precision) and once
in float64 (the exact value to about 1e-12), and prints, per reward, the golden value, our f32 recomputation, the
f64 value and the differences. The f32 − f64 column is the rounding error that any float32 implementation
carries; a tolerance on the rewards tighter than it cannot be met by float32 arithmetic in another operation
order, whoever computes it. With `--ours FILE` (the JSON lines printed by `cargo test -p r3-grpo --test
integration golden -- --nocapture`, or a list of numbers), our rewards are compared too.

Usage (the environment of bench/README.md):
    .venv/bin/python bench/grpo_golden_precision.py [--golden ../shared/golden/smollm2]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, add_thought_row, gguf_path, load_gguf  # noqa: E402


def latent(torch, w: dict, hidden, dtype):
    """LatentRATT (docs/method.md §3 [CODE]): one head over the full width d, q/k/v with biases, RoPE base 1000 over
    the whole vector (rotate-half); the query is the last position. hidden [L, d] → r [d]."""
    length, d = hidden.shape
    lin = {n: (w[f"latentratt.{n}.weight"].to(dtype), w[f"latentratt.{n}.bias"].to(dtype)) for n in "qkv"}
    inv_freq = 1.0 / (1000.0 ** (torch.arange(0, d, 2, dtype=dtype) / d))
    pos = torch.arange(length, dtype=dtype)

    def rope(x, p):
        freqs = p[:, None] * inv_freq[None, :]
        emb = torch.cat([freqs, freqs], dim=-1)
        rot = torch.cat([-x[..., d // 2:], x[..., : d // 2]], dim=-1)
        return x * emb.cos() + rot * emb.sin()

    q = rope(hidden[-1:] @ lin["q"][0].T + lin["q"][1], pos[-1:])
    k = rope(hidden @ lin["k"][0].T + lin["k"][1], pos)
    v = hidden @ lin["v"][0].T + lin["v"][1]
    probs = ((q @ k.T) / d ** 0.5).softmax(-1)
    return (probs @ v)[0]


def rewards(dtype) -> tuple[list[list[float]], list[list[float]]]:
    """The golden GRPO rewards −PPL recomputed in `dtype`, and the SFT examples' target log-probs."""
    import torch
    from safetensors.torch import load_file

    torch.set_num_threads(2)
    golden = json.load(open(ARGS.golden / "latent_golden.json"))
    w = load_file(ARGS.golden / "latent_golden.safetensors")
    model, _ = load_gguf(gguf_path("smollm2-135m"))
    add_thought_row(model, golden["thought_id"])
    with torch.no_grad():
        model.get_input_embeddings().weight[golden["thought_id"]] = w["thought_embedding"]
    model = model.to(dtype).eval()
    noise = w["grpo.noise"].to(dtype)
    k_samples = golden["grpo"]["K"]
    out, logps = [], []
    with torch.no_grad():
        for g, ex in enumerate(golden["examples"][:2]):
            prompt = torch.tensor(ex["prompt_ids"][:-1])[None]  # the thought is the last prompt id
            target = torch.tensor(ex["target_ids"])
            hidden = model(input_ids=prompt, output_hidden_states=True).hidden_states[-1][0]  # final norm
            r = latent(torch, w, hidden, dtype)
            emb = model.get_input_embeddings()
            row = []
            for k in range(k_samples):
                x = torch.cat([emb(prompt)[0], (r + noise[g, k])[None], emb(target[:-1])], 0)[None]
                logits = model(inputs_embeds=x).logits[0, prompt.shape[1]:]  # the positions predicting targets
                logp = logits.log_softmax(-1).gather(-1, target[:, None])[:, 0]
                if k == 0:
                    logps.append([float(v) for v in logp])
                row.append(-float(torch.exp(-logp.mean())))
            out.append(row)
    return out, logps


def main() -> None:
    golden = json.load(open(ARGS.golden / "latent_golden.json"))
    want = [v for row in golden["grpo"]["rewards"] for v in row]
    f32, logp32 = rewards(__import__("torch").float32)
    f64, logp64 = rewards(__import__("torch").float64)
    f32 = [v for row in f32 for v in row]
    f64 = [v for row in f64 for v in row]
    ours = json.load(open(ARGS.ours)) if ARGS.ours else None
    print("| reward | golden | torch f32 (here) | torch f64 | golden − f64 | f32 here − f64 | f32 here − golden |"
          + (" ours − golden | ours − f64 |" if ours else ""))
    print("|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---:|" if ours else ""))
    for i, (gv, a, b) in enumerate(zip(want, f32, f64)):
        line = f"| {i} | {gv:.6f} | {a:.6f} | {b:.6f} | {gv - b:.2e} | {a - b:.2e} | {a - gv:.2e} |"
        if ours:
            line += f" {ours[i] - gv:.2e} | {ours[i] - b:.2e} |"
        print(line)
    worst = max(abs(g - b) for g, b in zip(want, f64))
    print(f"\nlargest |golden − f64| = {worst:.2e}; largest |f32 here − f64| = "
          f"{max(abs(a - b) for a, b in zip(f32, f64)):.2e}")
    lp = max(abs(a - b) for ra, rb in zip(logp32, logp64) for a, b in zip(ra, rb))
    print(f"target log-probs of the un-noised samples: largest |f32 − f64| = {lp:.2e}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--golden", type=Path, default=REPO.parent / "shared" / "golden" / "smollm2")
    ap.add_argument("--ours", type=Path, help="a JSON list of our 8 rewards, in the golden's order")
    ARGS = ap.parse_args()
    main()
