"""Helpers shared by the bench/*_vs_*.py scripts: the repository paths, running `latentr3 bench ... --json`,
loading a cached GGUF file into transformers, the timing loop and running a PyTorch reference in a child process.

The scripts put this folder on `sys.path` and `import common`; torch and transformers are imported lazily, so
`--help` works without them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """The model cache of `latentr3 model fetch`: `$LATENTR3_CACHE`, else ~/.cache/latentr3/models."""
    env = os.environ.get("LATENTR3_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "latentr3" / "models"


def data_dir(arg: str | None) -> Path:
    """`--data`, else `$LATENTR3_DATA`, else ../shared/datasets/amazon18 beside the repository."""
    if arg:
        return Path(arg)
    if os.environ.get("LATENTR3_DATA"):
        return Path(os.environ["LATENTR3_DATA"])
    return REPO.parent / "shared" / "datasets" / "amazon18"


def gguf_path(model_id: str) -> Path:
    """The cached GGUF file of `model_id`; exits with a hint when it is missing."""
    gguf = cache_dir() / f"{model_id}.gguf"
    if not gguf.is_file():
        sys.exit(f"{gguf} is missing: run `latentr3 model fetch {model_id}`")
    return gguf


def load_gguf(gguf: Path, tokenizer: bool = False):
    """The f32 transformers model of a GGUF file, and with `tokenizer` its tokenizer too (else None)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        # transformers reads a GGUF file from a folder: link the cached file into a scratch folder.
        os.symlink(gguf, Path(tmp) / gguf.name)
        tok = AutoTokenizer.from_pretrained(tmp, gguf_file=gguf.name) if tokenizer else None
        model = AutoModelForCausalLM.from_pretrained(tmp, gguf_file=gguf.name, dtype=torch.float32)
    return model, tok


def add_thought_row(model, thought_id: int) -> None:
    """Appends the `<|Thought|>` row (id `thought_id`, the old vocabulary size) to the input embedding,
    initialised to the mean embedding (the tied head gains it too)."""
    import torch

    emb = model.get_input_embeddings().weight
    assert thought_id == emb.shape[0], f"thought id {thought_id} != vocabulary {emb.shape[0]}"
    mean = emb.detach().mean(0)
    model.resize_token_embeddings(thought_id + 1)
    with torch.no_grad():
        model.get_input_embeddings().weight[thought_id] = mean


def run_bench_json(cmd: list[str], threads: int) -> dict:
    """Runs a `latentr3 bench ... --json` command line with `threads` rayon threads and returns its one JSON line;
    exits with its stderr when it fails."""
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), RUST_LOG="warn")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr}")
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1, f"expected one JSON line, got {out.stdout!r}"
    return json.loads(lines[0])


def timed_runs(fn, runs: int, warmup: int, reset=None) -> list[float]:
    """The wall times of `runs` calls of `fn()` after `warmup` untimed ones; `reset()` runs untimed after each
    call (to restore a cache)."""
    times = []
    for i in range(warmup + runs):
        t = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - t
        if reset is not None:
            reset()
        if i >= warmup:
            times.append(elapsed)
    return times


def median_time(fn, runs: int, warmup: int, reset=None) -> float:
    """The median of [`timed_runs`]."""
    return statistics.median(timed_runs(fn, runs, warmup, reset))


def reference_in_child(module: str, model_id: str, batch_file: Path, runs: int, warmup: int, threads: int) -> dict:
    """Runs `MODULE.torch_step_time(model_id, batch_file, runs, warmup, threads)` of a script in this folder in a
    child Python process (so that its peak memory is its own) and returns its result; exits when it fails."""
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r}); "
            f"import {module} as m; print(json.dumps(m.torch_step_time({model_id!r}, "
            f"__import__('pathlib').Path({str(batch_file)!r}), {runs}, {warmup}, {threads})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"the PyTorch reference failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def step_parser(description: str, add_size, warmup: int = 1) -> argparse.ArgumentParser:
    """The arguments of the training-step comparisons (`sft_vs_torch.py`, `grpo_vs_torch.py`): the models, the
    binary, the script's size option (`add_size(parser)`), threads, runs, warm-up runs (default `warmup`) and a
    JSON-lines file."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--models", nargs="+", default=["smollm2-135m", "qwen2.5-coder-0.5b"])
    ap.add_argument("--bin", type=Path, default=REPO / "target" / "release" / "latentr3")
    add_size(ap)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=warmup)
    ap.add_argument("--json-out", type=Path)
    return ap


def require_binary(binary: Path) -> None:
    """Exits with a build hint when the `latentr3` binary is missing."""
    if not binary.is_file():
        sys.exit(f"{binary} is missing: run `cargo build --release -p r3-cli` first (or pass --bin)")


def append_json_line(path: Path | None, row: dict) -> None:
    """Appends `row` as one JSON line to `path` (nothing when it is None)."""
    if path:
        with open(path, "a") as out_file:
            out_file.write(json.dumps(row) + "\n")
