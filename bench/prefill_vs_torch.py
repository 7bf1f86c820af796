#!/usr/bin/env python3
"""Side-by-side speed of our decoder (`latentr3 bench`) and PyTorch (`transformers`) on the same GGUF file and
the same token ids, on the CPU with the same number of threads.

For each model it measures
  - prefill: one forward pass over batch x tokens ids plus the logits of each row's last position
    (batch 1 and 8, 200 tokens by default);
  - decode: one cached decoding step of one token per row after a prefill of `tokens` ids (batch 10), timing only
    the step;
each with warm-up runs and the median of several timed runs, and prints a Markdown table: our tokens/s, torch
tokens/s, their ratio, and the GFLOP/s of both: ours the work our pass did (our prefill computes the last layer
at the last position only), torch's a full forward pass (`full_pass_gflop` of `latentr3 bench`) over its time.

The ids are the item titles of the CDs test split joined with ", ": `latentr3 bench --dump-ids` writes the windows
it used, this script re-tokenises the same text with the Hugging Face tokenizer that `transformers` builds from the
GGUF file, asserts that both give the same windows, and feeds exactly those ids to torch.

Setup (see bench/README.md):
    python3 -m venv .venv && .venv/bin/pip install torch transformers gguf numpy
    cargo build --release -p r3-cli
    .venv/bin/python bench/prefill_vs_torch.py --models smollm2-135m qwen2.5-coder-0.5b
"""

from __future__ import annotations

import argparse
import csv
import inspect
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, data_dir, gguf_path, load_gguf, median_time, require_binary, run_bench_json  # noqa: E402

TITLES_SPLIT = Path("test") / "CDs_and_Vinyl_5_2015-10-2018-11.csv"


def titles_text(data: Path) -> str:
    """The benchmark text of `latentr3 bench`: the `item_title` of every row of the CDs test split, in file
    order, joined with ", "."""
    with open(data / TITLES_SPLIT, newline="", encoding="utf-8") as f:
        return ", ".join(row["item_title"] for row in csv.DictReader(f))


def ours(binary: Path, model: str, kind: str, batch: int, tokens: int, runs: int, warmup: int, threads: int,
         data: Path, ids_file: Path) -> dict:
    """Runs `latentr3 bench KIND ... --json --dump-ids FILE` and returns its JSON line."""
    cmd = [str(binary), "bench", kind, "--model", model, "--batch", str(batch), "--tokens", str(tokens),
           "--runs", str(runs), "--warmup", str(warmup), "--json", "--data", str(data), "--dump-ids", str(ids_file)]
    return run_bench_json(cmd, threads)


def gguf_pre_tokenizer(path: Path) -> str:
    """The `tokenizer.ggml.pre` value of a GGUF file (`smollm`, `qwen2`, ...)."""
    from gguf import GGUFReader

    field = GGUFReader(str(path)).fields["tokenizer.ggml.pre"]
    return bytes(field.parts[field.data[0]]).decode()


def fix_pre_tokenizer(tok, pre: str) -> None:
    """Gives the tokenizer `transformers` builds from a GGUF file the pre-tokeniser of the published
    `tokenizer.json`. NOTE: for `smollm` (SmolLM2), transformers 5.24 builds a plain `ByteLevel` pre-tokeniser and
    drops the `Digits(individual_digits=True)` split that the published tokenizer.json (and llama.cpp's `smollm`
    regexes) apply first. The two differ on whitespace runs before a digit ("-  7": ours and the published
    tokenizer give `ĠĠ`, `7`; the GGUF-built one `Ġ`, `Ġ`, `7`), which the CDs titles contain."""
    if pre == "smollm":
        from tokenizers import pre_tokenizers

        tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True),
             pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])


def first_difference(ours: list[list[int]], theirs: list[list[int]], tok) -> str:
    for r, (a, b) in enumerate(zip(ours, theirs)):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return (f"row {r}, position {i}: ours {tok.convert_ids_to_tokens(a[max(0, i - 3):i + 4])}, "
                        f"HF {tok.convert_ids_to_tokens(b[max(0, i - 3):i + 4])}")
    return "different lengths"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["smollm2-135m", "qwen2.5-coder-0.5b"])
    ap.add_argument("--bin", type=Path, default=REPO / "target" / "release" / "latentr3",
                    help="the latentr3 binary (cargo build --release -p r3-cli)")
    ap.add_argument("--data", help="the data folder (default: $LATENTR3_DATA, else ../shared/datasets/amazon18)")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads of both sides (torch and rayon)")
    ap.add_argument("--prefill-tokens", type=int, default=200)
    ap.add_argument("--prefill-batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--decode-batch", type=int, default=10)
    ap.add_argument("--decode-tokens", type=int, default=200, help="cached tokens before the decode step")
    ap.add_argument("--prefill-runs", type=int, default=3)
    ap.add_argument("--decode-runs", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--json-out", type=Path, help="also write every measurement as JSON lines to this file")
    args = ap.parse_args()

    import torch

    require_binary(args.bin)
    torch.set_num_threads(args.threads)
    data = data_dir(args.data)
    text = titles_text(data)
    settings = [("prefill", b, args.prefill_tokens, args.prefill_runs) for b in args.prefill_batches]
    settings.append(("decode", args.decode_batch, args.decode_tokens, args.decode_runs))

    rows = []
    for model_id in args.models:
        gguf = gguf_path(model_id)
        t = time.perf_counter()
        model, tok = load_gguf(gguf, tokenizer=True)
        print(f"{model_id}: torch loaded the GGUF (and its tokenizer) in {time.perf_counter() - t:.1f} s "
              f"(attention: {model.config._attn_implementation})", file=sys.stderr)
        model.eval()
        fix_pre_tokenizer(tok, gguf_pre_tokenizer(gguf))
        hf_ids = tok(text, add_special_tokens=False)["input_ids"]

        for kind, batch, tokens, runs in settings:
            # The previous measurement's own threads keep the 1-minute load average near --threads.
            load = os.getloadavg()[0]
            if load > args.threads + 0.5:
                print(f"warning: load average {load:.1f} with {args.threads} benchmark threads: other processes "
                      "compete for the CPU and the timings are unreliable", file=sys.stderr)
            with tempfile.NamedTemporaryFile(suffix=".json") as f:
                mine = ours(args.bin, model_id, kind, batch, tokens, runs, args.warmup, args.threads, data,
                            Path(f.name))
                windows = json.load(open(f.name))["windows"]
            width = tokens + (1 if kind == "decode" else 0)
            expected = [hf_ids[i * width:(i + 1) * width] for i in range(batch)]
            if windows != expected:
                sys.exit(f"{model_id}: our token ids differ from the Hugging Face tokenizer's at "
                         f"{first_difference(windows, expected, tok)}")
            # Torch gets exactly the ids our side used (equal to the HF tokenizer's, as just checked).
            ids = torch.tensor(windows, dtype=torch.long)  # [B, width]

            with torch.inference_mode():
                if kind == "prefill":
                    def step():
                        return model(input_ids=ids, use_cache=True, logits_to_keep=1).logits
                    secs = median_time(step, runs, args.warmup)
                    n = batch * tokens
                else:
                    prefix = model(input_ids=ids[:, :tokens], use_cache=True, logits_to_keep=1)
                    # transformers 5.x names the cache `cache`; 4.x `past_key_values`.
                    cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
                    cache = getattr(prefix, cache_arg)
                    step_ids = ids[:, tokens:]  # [B, 1]

                    def step():
                        return model(input_ids=step_ids, use_cache=True, logits_to_keep=1,
                                     **{cache_arg: cache}).logits
                    # The cache grows by the step in place: crop it back (untimed) so that every run is the same
                    # (transformers 5: a negative count removes that many positions).
                    def reset():
                        cache.crop(-(cache.get_seq_length() - tokens))
                        assert cache.get_seq_length() == tokens
                    secs = median_time(step, runs, args.warmup, reset=reset)
                    n = batch
            torch_tps = n / secs
            row = {
                "model": model_id, "kind": kind, "batch": batch, "tokens": tokens, "runs": runs,
                "ours_median_s": mine["median_s"], "ours_tokens_per_s": mine["tokens_per_s"],
                "ours_gflops": mine["gflops"], "torch_median_s": secs, "torch_tokens_per_s": torch_tps,
                # torch runs a full forward pass (its last layer at every position): that FLOP count over its
                # time. Ours is the work our pass did (`last_only` skips the last layer's other positions).
                "torch_gflops": mine["full_pass_gflop"] / secs,
                "ratio": mine["tokens_per_s"] / torch_tps, "threads": args.threads,
                "torch": torch.__version__, "device": mine["device"], "loadavg_1min": os.getloadavg()[0],
            }
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
        del model

    if args.json_out:
        args.json_out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"\nCPU, {args.threads} threads, f32; torch {torch.__version__}; median of the timed runs after "
          f"{args.warmup} warm-up run(s)\n")
    print("| model | kind | batch × tokens | ours tokens/s | torch tokens/s | ours / torch | ours GFLOP/s | "
          "torch GFLOP/s |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        shape = f"{r['batch']} × {r['tokens']}" + (" (+1 step)" if r["kind"] == "decode" else "")
        print(f"| {r['model']} | {r['kind']} | {shape} | {r['ours_tokens_per_s']:.1f} | "
              f"{r['torch_tokens_per_s']:.1f} | {r['ratio']:.2f} | {r['ours_gflops']:.1f} | "
              f"{r['torch_gflops']:.1f} |")


if __name__ == "__main__":
    main()
