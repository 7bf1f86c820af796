#!/usr/bin/env python3
"""Side-by-side evaluation speed: `latentr3 bench eval` against HF transformers `generate` with constrained beam
search, on the same CDs test users, the same prompt ids and the same item trie (CPU, f32, the same threads).

The HF side is the official inference: `model.generate(num_beams=10, num_return_sequences=10, length_penalty=1.0,
max_new_tokens=128, prefix_allowed_tokens_fn=...)` over the trie of `encode('"' + title + '"\\n') + [eos]` of
every catalogue title, left-padded batches with an attention mask. Both sides get exactly our ids:
`latentr3 bench eval --dump F` writes the prompt ids of the users, the catalogue's trie sequences and our
recommendations; this script re-encodes every catalogue title with the tokenizer `transformers` builds from the
GGUF file (with the SmolLM2 pre-tokenizer fix of prefill_vs_torch.py) and reports how many differ, then feeds our
prompt ids and builds the trie from our sequences. It also compares the returned beams (token ids in order,
scores) with ours.

It prints users/s of both and their ratio (target >= 5x), and LatentR3's per-user latency against BIGRec's on
our side (`--n-latent 1`: the thought row and a seeded random LatentRATT; target <= 1.2x).

Setup: see bench/README.md (the same environment as prefill_vs_torch.py), then
    cargo build --release -p r3-cli
    .venv/bin/python bench/eval_vs_hf.py --users 50
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, gguf_path, load_gguf, require_binary, run_bench_json  # noqa: E402
from prefill_vs_torch import fix_pre_tokenizer, gguf_pre_tokenizer  # noqa: E402


def ours(binary: Path, model: str, users: int, batch: int, n_latent: int, threads: int, dump: Path | None) -> dict:
    """Runs `latentr3 bench eval ... --json` and returns its JSON line."""
    cmd = [str(binary), "bench", "eval", "--model", model, "--users", str(users), "--batch", str(batch),
           "--n-latent", str(n_latent), "--json"]
    if dump is not None:
        cmd += ["--dump", str(dump)]
    return run_bench_json(cmd, threads)


def build_trie(sequences: list[list[int]]) -> dict:
    """A nested-dict trie: token -> child."""
    root: dict = {}
    for seq in sequences:
        node = root
        for t in seq:
            node = node.setdefault(t, {})
    return root


def hf_generate(model_id: str, dump: dict, batch: int, threads: int, warmup: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    gguf = gguf_path(model_id)
    model, tok = load_gguf(gguf, tokenizer=True)
    model.eval()
    fix_pre_tokenizer(tok, gguf_pre_tokenizer(gguf))
    eos, pad = dump["eos_id"], dump["pad_id"]

    # The trie sequences as the HF tokenizer encodes the titles, against ours.
    hf_ids = [tok('"' + t + '"\n', add_special_tokens=False)["input_ids"] + [eos] for t in dump["catalogue"]]
    mismatched = [i for i, (a, b) in enumerate(zip(hf_ids, dump["catalogue_ids"])) if a != b]
    if mismatched:
        print(f"warning: {len(mismatched)} of {len(hf_ids)} titles encode differently with the HF tokenizer "
              f"(first: {dump['catalogue'][mismatched[0]]!r}); the trie uses our ids", file=sys.stderr)
    trie = build_trie(dump["catalogue_ids"])

    prompts = dump["prompts"]
    search = dump["search"]
    results, times = [], []

    def run_batch(rows: list[list[int]]):
        width = max(len(p) for p in rows)
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in rows], dtype=torch.long)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in rows], dtype=torch.long)

        def allowed(_batch_id, input_ids):
            node = trie
            for t in input_ids[width:].tolist():
                node = node.get(t)
                if node is None:
                    return [eos]
            return list(node.keys()) or [eos]

        with torch.inference_mode():
            return model.generate(
                input_ids=ids, attention_mask=mask, num_beams=search["num_beams"],
                num_return_sequences=search["num_return_sequences"], length_penalty=search["length_penalty"],
                max_new_tokens=search["max_new_tokens"], prefix_allowed_tokens_fn=allowed, do_sample=False,
                pad_token_id=pad, eos_token_id=eos, return_dict_in_generate=True, output_scores=True,
            ), width

    for _ in range(warmup):
        run_batch(prompts[:batch])
    for start in range(0, len(prompts), batch):
        rows = prompts[start:start + batch]
        t = time.perf_counter()
        out, width = run_batch(rows)
        times.append(time.perf_counter() - t)
        print(f"HF: users {start}..{start + len(rows)} of {len(prompts)} in {times[-1]:.1f} s", file=sys.stderr)
        n_ret = search["num_return_sequences"]
        seqs = out.sequences[:, width:].tolist()
        scores = out.sequences_scores.tolist()
        for u in range(len(rows)):
            user = []
            for j in range(u * n_ret, (u + 1) * n_ret):
                s = seqs[j]
                if eos in s:
                    s = s[:s.index(eos) + 1]
                user.append({"tokens": s, "score": scores[j]})
            results.append(user)
    total = sum(times)
    return {"total_s": total, "users_per_s": len(prompts) / total,
            "median_users_per_s": statistics.median(len(prompts[i * batch:(i + 1) * batch]) / t
                                                    for i, t in enumerate(times)),
            "results": results, "tokenizer_mismatches": len(mismatched), "torch": torch.__version__}


def compare(ours_results: list, hf_results: list) -> tuple[int, float]:
    """The users whose 10 beams are the same token sequences in the same order, and the largest score difference
    over those."""
    same, maxdiff = 0, 0.0
    for a, b in zip(ours_results, hf_results):
        # HF pads a user with fewer completable paths than beams with -1e9 filler rows; ours returns only live ones.
        b = [h for h in b if h["score"] > -1e5]
        if [h["tokens"] for h in a] == [h["tokens"] for h in b]:
            same += 1
            maxdiff = max([maxdiff] + [abs(x["score"] - y["score"]) for x, y in zip(a, b)])
    return same, maxdiff


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--bin", type=Path, default=REPO / "target" / "release" / "latentr3",
                    help="the latentr3 binary (cargo build --release -p r3-cli)")
    ap.add_argument("--users", type=int, default=50, help="the first N CDs test users")
    ap.add_argument("--batch", type=int, default=4, help="users per batch, both sides")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads of both sides (torch and rayon)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed HF batches first (ours: latentr3's --warmup 1)")
    ap.add_argument("--json-out", type=Path, help="also write the summary as JSON to this file")
    args = ap.parse_args()
    require_binary(args.bin)

    load_before = os.getloadavg()[0]
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        bigrec = ours(args.bin, args.model, args.users, args.batch, 0, args.threads, Path(f.name))
        dump = json.load(open(f.name))
    latent = ours(args.bin, args.model, args.users, args.batch, 1, args.threads, None)
    load_ours = os.getloadavg()[0]
    # The reference in this process after ours, so that the two never compete for the CPU.
    hf = hf_generate(args.model, dump, args.batch, args.threads, args.warmup)
    load_hf = os.getloadavg()[0]
    same, maxdiff = compare(dump["results"], hf["results"])

    summary = {
        "model": args.model, "users": args.users, "batch": args.batch, "threads": args.threads,
        "ours_users_per_s": bigrec["users_per_s"], "ours_median_users_per_s": bigrec["median_users_per_s"],
        "hf_users_per_s": hf["users_per_s"], "hf_median_users_per_s": hf["median_users_per_s"],
        "ratio": bigrec["users_per_s"] / hf["users_per_s"],
        "bigrec_latency_median_s": bigrec["latency_median_s"], "bigrec_latency_p90_s": bigrec["latency_p90_s"],
        "latentr3_latency_median_s": latent["latency_median_s"], "latentr3_latency_p90_s": latent["latency_p90_s"],
        "latency_ratio": latent["latency_median_s"] / bigrec["latency_median_s"],
        "latency_ratio_total": bigrec["users_per_s"] / latent["users_per_s"],
        "same_beams_users": same, "score_maxdiff": maxdiff, "tokenizer_mismatches": hf["tokenizer_mismatches"],
        "torch": hf["torch"], "device": bigrec["device"],
        "loadavg_1min": {"before": load_before, "after_ours": load_ours, "after_hf": load_hf},
    }
    print(json.dumps(summary), file=sys.stderr)
    if args.json_out:
        args.json_out.write_text(json.dumps(summary) + "\n")
    if max(load_before, load_ours, load_hf) > args.threads + 0.5:
        print(f"warning: 1-minute load average up to {max(load_before, load_ours, load_hf):.1f} with "
              f"{args.threads} benchmark threads: other processes competed for the CPU", file=sys.stderr)
    print(f"\n{args.model}, first {args.users} CDs test users, batches of {args.batch}, CPU f32, "
          f"{args.threads} threads; torch {hf['torch']}\n")
    print("| side | users/s (overall) | users/s (median batch) | per-user latency median / p90 (s) |")
    print("|---|---:|---:|---:|")
    print(f"| latentr3 BIGRec (no latent) | {bigrec['users_per_s']:.3f} | {bigrec['median_users_per_s']:.3f} | "
          f"{bigrec['latency_median_s']:.3f} / {bigrec['latency_p90_s']:.3f} |")
    print(f"| latentr3 LatentR3 (1 latent) | {latent['users_per_s']:.3f} | {latent['median_users_per_s']:.3f} | "
          f"{latent['latency_median_s']:.3f} / {latent['latency_p90_s']:.3f} |")
    print(f"| HF generate (BIGRec) | {hf['users_per_s']:.3f} | {hf['median_users_per_s']:.3f} | "
          f"{1 / hf['median_users_per_s']:.3f} (1 / median batch rate) |")
    print(f"\nours / HF users/s: {summary['ratio']:.2f}x (target >= 5x)")
    print(f"LatentR3 / BIGRec per-user latency: {summary['latency_ratio']:.3f}x median, "
          f"{summary['latency_ratio_total']:.3f}x overall (target <= 1.2x)")
    print(f"same 10 beams in the same order as HF: {same} of {args.users} users (score maxdiff {maxdiff:.2e}); "
          f"{hf['tokenizer_mismatches']} catalogue titles tokenised differently by HF")


if __name__ == "__main__":
    main()
