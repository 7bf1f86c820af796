//! `latentr3 baseline train|eval`: the traditional recommenders of Table 1 (SASRec, GRU4Rec, Caser, AlphaRec;
//! `r3-baselines`) on the same splits and metrics as the LLM models.
//!
//! AlphaRec's item language representations (the mean-pooled final hidden states of each catalogue title from
//! `--backbone`, default SmolLM2-135M) are computed once, in batches, and cached in the run folder as
//! `text_embeddings.safetensors` (reused when its backbone, title count and titles hash match).
//!
//! `train` rebuilds the users' train sequences, trains with Adam and early stopping on validation NDCG@10, and
//! evaluates the best epoch on the test split. Its run folder (default `runs/baselines/<model>-<stem>`) holds
//! - `config.json`: the resolved experiment (model hyper-parameters and training settings), data, stem, device;
//! - `metrics.jsonl`: one line per epoch (loss, validation HR@10 / NDCG@10, seconds of training and validation);
//! - `model/`: the best epoch's weights and settings, replaced atomically whenever validation improves (it is
//!   also what `eval --assistant` reads for D3's guidance);
//! - `test/predictions.json` and `test/metrics.json`: the official prediction records of the best model and their
//!   HR@K / NDCG@K by title, by item id and per popularity bucket (printed as a table).
//!
//! `eval` ranks a split with the model of a run folder (`--out`, or `--checkpoint` for a model folder elsewhere)
//! and writes `<split>/predictions.json` and `<split>/metrics.json` into the run folder.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use burn::module::Module;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use r3_backbone::HiddenInput;
use r3_baselines::{
    BaselineExperiment, BaselineModel, EpochReport, Evaluator, Event, FitInput, FitOutput, ModelKind, RunConfig,
    RunSummary, Sequences, fit, seed_device, store,
};
use r3_data::{Dataset, Popularity, Split};
use r3_metrics::{BootstrapConfig, Format, Report};
use serde_json::json;

use super::DatasetArgs;
use super::metrics::TableArgs;
use crate::device;

/// The subcommands of `latentr3 baseline`.
#[derive(Debug, clap::Subcommand)]
pub enum BaselineCommand {
    /// Train a baseline with early stopping on validation NDCG@10, then evaluate it on the test split.
    Train(TrainArgs),
    /// Evaluate a trained baseline on a split.
    Eval(EvalArgs),
}

/// Arguments of `latentr3 baseline train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// The model: sasrec, gru4rec, caser or alpharec (default: the experiment file's).
    #[arg(long)]
    pub model: Option<ModelKind>,
    /// An experiment file (experiments/baselines/*.toml); without it, the model's paper defaults.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The data folder (with info/, train/, valid/, test/). Default: $LATENTR3_DATA, else
    /// ../shared/datasets/amazon18 beside the repository.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The dataset stem, e.g. CDs_and_Vinyl_5_2015-10-2018-11. Default: the experiment file's `stem`.
    #[arg(long)]
    pub stem: Option<String>,
    /// The run folder. Default: runs/baselines/<model>-<stem>.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override the experiment's maximum number of epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Continue the run in the run folder from its last checkpoint (the same experiment and data); a folder that
    /// already holds a run is continued without it as well.
    #[arg(long)]
    pub resume: bool,
    /// Override the experiment's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// AlphaRec: the backbone whose mean-pooled title hidden states are the item language representations (a
    /// model id, a .gguf file or a Hugging Face folder; default: the experiment's, smollm2-135m).
    #[arg(long)]
    pub backbone: Option<String>,
    #[command(flatten)]
    pub table: TableArgs,
    /// The compute device: flex, wgpu[:N], vulkan[:N] or cuda[:N] (default: the first compiled in).
    #[arg(long, alias = "backend")]
    pub device: Option<device::DeviceSpec>,
}

/// Arguments of `latentr3 baseline eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// The model kind; checked against the model folder.
    #[arg(long)]
    pub model: ModelKind,
    #[command(flatten)]
    pub dataset: DatasetArgs,
    /// The run folder of `baseline train` (its `model/` is evaluated; results go here). Default:
    /// runs/baselines/<model>-<stem>.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A model folder to evaluate instead of the run folder's `model/`.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// The split to evaluate.
    #[arg(long, default_value = "test")]
    pub split: Split,
    #[command(flatten)]
    pub table: TableArgs,
    /// The compute device: flex, wgpu[:N], vulkan[:N] or cuda[:N] (default: the first compiled in).
    #[arg(long, alias = "backend")]
    pub device: Option<device::DeviceSpec>,
}

/// Runs `latentr3 baseline ...`.
pub fn run(cmd: &BaselineCommand) -> anyhow::Result<()> {
    match cmd {
        BaselineCommand::Train(a) => run_train(a),
        BaselineCommand::Eval(a) => run_eval(a),
    }
}

fn default_out(model: ModelKind, stem: &str) -> PathBuf {
    PathBuf::from("runs/baselines").join(format!("{model}-{stem}"))
}

fn write_json(path: &Path, value: &serde_json::Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)? + "\n";
    r3_data::write_atomic(path, |w| w.write_all(text.as_bytes()))?;
    Ok(())
}

/// Ranks `split` with `model`, writes `dir/predictions.json` and `dir/metrics.json`, returns the report.
fn evaluate_split(
    model: &r3_baselines::BaselineModel,
    ds: &Dataset,
    split: Split,
    table: &TableArgs,
    dir: &Path,
    eval_batch: usize,
) -> anyhow::Result<(Report, Popularity)> {
    let rows: Vec<_> = ds.split(split).iter().collect();
    let eval = Evaluator::new(&ds.catalogue, rows, table.k.clone(), eval_batch)?;
    let t = Instant::now();
    let records = eval.records(&eval.rank(model));
    let secs = t.elapsed().as_secs_f64();
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let pred_path = dir.join("predictions.json");
    r3_metrics::write_predictions(&pred_path, &records, Format::Json)?;
    let (report, popularity) = table.report(
        ds,
        ds.split(split),
        &pred_path.display().to_string(),
        &records,
        None,
        BootstrapConfig { resamples: 0, seed: 0 },
    )?;
    write_json(
        &dir.join("metrics.json"),
        &json!({
            "split": split,
            "rows": records.len(),
            "ranking_s": secs,
            "popularity": { "coverage": table.coverage, "popular_items": popularity.n_popular() },
            "report": report,
        }),
    )?;
    Ok((report, popularity))
}

/// The experiment of `baseline train`'s flags (the file's, or the model's defaults, with the overrides) and its
/// dataset.
fn experiment(args: &TrainArgs) -> anyhow::Result<(BaselineExperiment, DatasetArgs)> {
    let mut exp = match (&args.config, args.model) {
        (Some(path), model) => {
            let e = BaselineExperiment::read(path)?;
            if let Some(m) = model
                && m != e.model
            {
                bail!("--model {m} but {} trains `{}`: drop one of them", path.display(), e.model);
            }
            e
        }
        (None, Some(m)) => BaselineExperiment::defaults(m),
        (None, None) => bail!("pass --model sasrec|gru4rec|caser|alpharec or --config FILE"),
    };
    if let Some(e) = args.epochs {
        exp.train.epochs = e;
    }
    if let Some(s) = args.seed {
        exp.train.seed = s;
    }
    if let Some(b) = &args.backbone {
        if exp.model != ModelKind::Alpharec {
            bail!("--backbone is AlphaRec's: {} does not use a language model", exp.model);
        }
        exp.alpharec.backbone = b.clone();
    }
    let dataset = DatasetArgs {
        data: args.data.clone(),
        stem: match (&args.stem, &exp.stem) {
            (Some(s), _) | (None, Some(s)) => s.clone(),
            (None, None) => bail!(
                "no dataset: pass --stem STEM (e.g. CDs_and_Vinyl_5_2015-10-2018-11) or set `stem` in the experiment \
                 file"
            ),
        },
    };
    exp.stem = Some(dataset.stem.clone());
    exp.validate()?;
    Ok((exp, dataset))
}

/// The untrained model on `ad` (AlphaRec reads or computes the items' language representations into `out`).
fn init_model(
    exp: &BaselineExperiment,
    ds: &Dataset,
    seqs: &Sequences,
    out: &Path,
    dev: &Device,
) -> anyhow::Result<BaselineModel> {
    let ad = dev.clone().autodiff();
    if exp.model == ModelKind::Alpharec {
        let titles = ds.catalogue.titles();
        let lm = text_embeddings(&exp.alpharec.backbone, titles, exp.alpharec.embed_batch, out, dev)?;
        seed_device(&ad, exp.train.seed);
        return Ok(exp.init_alpharec(&lm.values, lm.d, seqs, &ad)?);
    }
    seed_device(&ad, exp.train.seed);
    Ok(exp.init(ds.catalogue.len(), &ad))
}

/// Logs an epoch through tracing, so that the epochs are logged when stderr is not a terminal (the bar is hidden).
fn log_epoch(report: &EpochReport) {
    tracing::info!(
        epoch = report.epoch,
        loss = format!("{:.4}", report.loss),
        valid_hr10 = format!("{:.4}", report.valid_hr10),
        valid_ndcg10 = format!("{:.4}", report.valid_ndcg10),
        train_s = format!("{:.1}", report.train_s),
        valid_s = format!("{:.1}", report.valid_s),
        best = report.best,
        "epoch"
    );
}

fn run_train(args: &TrainArgs) -> anyhow::Result<()> {
    let (exp, dataset) = experiment(args)?;
    super::popularity_config(args.table.coverage)?;
    let data = dataset.dir()?;
    let ds = dataset.load(&data)?;
    let n = ds.catalogue.len();
    let out = args.out.clone().unwrap_or_else(|| default_out(exp.model, &dataset.stem));
    std::fs::create_dir_all(&out).with_context(|| format!("creating the run folder {}", out.display()))?;
    let dev = device::select(args.device)?;
    let (data, stem, device) = (data.display().to_string(), dataset.stem.clone(), format!("{dev:?}"));
    RunConfig { experiment: exp.clone(), data, stem, n_items: n, device }.write(&out)?;
    let seqs = Sequences::from_train(&ds.train, n);
    let valid_rows: Vec<_> = r3_train::seeded_subset(ds.valid.len(), exp.train.valid_limit, exp.train.seed)
        .into_iter()
        .map(|i| &ds.valid[i])
        .collect();
    let valid =
        Evaluator::new(&ds.catalogue, valid_rows, r3_metrics::Cutoffs::new(vec![5, 10])?, exp.train.eval_batch)?;
    let (users, targets, rows) = (seqs.seqs.len(), seqs.n_targets(), valid.rows().len());
    tracing::info!(model = %exp.model, users, targets, items = n, valid = rows, run = %out.display(), "training");
    let model = init_model(&exp, &ds, &seqs, &out, &dev)?;
    let bar = crate::progress::step_bar("{prefix:>9} [{bar:30}] {pos}/{len} steps {msg} eta {eta}", "epoch 1");
    let model_dir = out.join("model");
    let mut on_event = |e: Event<'_>| -> r3_baselines::Result<()> {
        match e {
            Event::EpochStart { epoch, steps } => {
                bar.set_prefix(format!("epoch {epoch}"));
                crate::progress::start_steps(&bar, 0, steps as u64);
            }
            Event::Step { loss, .. } => {
                bar.inc(1);
                bar.set_message(format!("loss {loss:.4}"));
            }
            Event::Epoch { report, model } => {
                bar.suspend(|| log_epoch(report));
                if report.best {
                    let meta = store::ModelMeta {
                        experiment: exp.clone(),
                        n_items: n,
                        stem: dataset.stem.clone(),
                        epoch: report.epoch,
                        valid_ndcg10: report.valid_ndcg10,
                        alpharec: store::AlphaRecShape::of(model, &exp.alpharec.backbone),
                    };
                    store::save(&model_dir, model, &meta)?;
                }
            }
        }
        Ok(())
    };
    // A folder that holds a killed run of this experiment continues it (its checkpoints are checked against the
    // settings, the data and the sample order); `xtask reproduce` reruns the same command after a kill.
    let resume = args.resume || out.join("metrics.jsonl").is_file();
    if resume {
        tracing::info!(run = %out.display(), "continuing the run from its last checkpoint (delete the folder to restart)");
    }
    let (max_len, settings) = (exp.max_len(), &exp.train);
    let input =
        FitInput { seqs: &seqs, max_len, valid: &valid, settings, run_dir: &out, resume, stop_after_steps: None };
    let t = Instant::now();
    let fitted = fit(input, model, &mut on_event)?;
    bar.finish_and_clear();
    finish(args, &exp, &ds, &fitted, (&out, t.elapsed().as_secs_f64()))
}

/// Prints the run's outcome, evaluates the best model on the test split and writes `summary.json`.
fn finish(
    args: &TrainArgs,
    exp: &BaselineExperiment,
    ds: &Dataset,
    fitted: &FitOutput,
    (out, total_s): (&Path, f64),
) -> anyhow::Result<()> {
    let stem = exp.stem.clone().unwrap_or_default();
    let epochs = fitted.history.len();
    let train_s: f64 = fitted.history.iter().map(|r| r.train_s).sum();
    let (best_epoch, valid_ndcg10) = (fitted.best_epoch, fitted.best_ndcg10);
    println!(
        "{} on {stem}: best epoch {best_epoch} of {epochs} (valid NDCG@10 {valid_ndcg10:.4}); {:.1} s training per \
         epoch, {total_s:.0} s in all",
        exp.model,
        train_s / epochs as f64,
    );
    let (report, _) =
        evaluate_split(&fitted.model, ds, Split::Test, &args.table, &out.join("test"), exp.train.eval_batch)?;
    let train_s_per_epoch = train_s / epochs as f64;
    let test = report.by_title.clone();
    RunSummary { model: exp.model, stem, best_epoch, epochs, valid_ndcg10, train_s_per_epoch, total_s, test }
        .write(out)?;
    print!("{}", report.to_table());
    println!("run folder: {}", out.display());
    Ok(())
}

fn run_eval(args: &EvalArgs) -> anyhow::Result<()> {
    super::popularity_config(args.table.coverage)?;
    let out = args.out.clone().unwrap_or_else(|| default_out(args.model, &args.dataset.stem));
    let model_dir = args.checkpoint.clone().unwrap_or_else(|| out.join("model"));
    if !store::is_model_dir(&model_dir) {
        bail!(
            "{}: not a baseline model folder (expected {} and {}): train one with `latentr3 baseline train`, or pass \
             --checkpoint DIR",
            model_dir.display(),
            store::CONFIG_FILE,
            store::WEIGHTS_FILE
        );
    }
    let data = args.dataset.dir()?;
    let ds = args.dataset.load(&data)?;
    let dev = device::select(args.device)?;
    let (model, meta) = store::load(&model_dir, &dev)?;
    if meta.experiment.model != args.model {
        bail!("--model {} but {} holds a {} model", args.model, model_dir.display(), meta.experiment.model);
    }
    if meta.n_items != ds.catalogue.len() {
        bail!(
            "{} scores {} items but the catalogue of `{}` has {}: evaluate on the dataset it was trained on ({})",
            model_dir.display(),
            meta.n_items,
            args.dataset.stem,
            ds.catalogue.len(),
            meta.stem
        );
    }
    let dir = out.join(args.split.dir_name());
    let (report, _) =
        evaluate_split(&model.valid(), &ds, args.split, &args.table, &dir, meta.experiment.train.eval_batch)?;
    print!("{}", report.to_table());
    println!("results: {}", dir.display());
    Ok(())
}

/// AlphaRec's item language representations: read from `out/text_embeddings.safetensors` when it was computed by
/// `backbone` for these titles, otherwise computed (mean-pooled final hidden states of each title, in batches of
/// `batch` titles of similar length) and written there.
/// The text embeddings cached at `path` when they are of `backbone` and of these titles.
fn cached_embeddings(
    path: &Path,
    backbone: &str,
    n_titles: usize,
    hash: &str,
) -> anyhow::Result<Option<store::TextEmbeddings>> {
    if !path.is_file() {
        return Ok(None);
    }
    let cached = store::read_text_embeddings(path)?;
    if cached.backbone == backbone && cached.n_titles() == n_titles && cached.titles_hash == hash {
        tracing::info!(path = %path.display(), backbone, d = cached.d, "reusing the text embeddings");
        return Ok(Some(cached));
    }
    tracing::warn!(
        path = %path.display(),
        cached_backbone = cached.backbone,
        cached_titles = cached.n_titles(),
        backbone,
        titles = n_titles,
        "the cached text embeddings are of another backbone or catalogue: recomputing them"
    );
    Ok(None)
}

fn text_embeddings(
    backbone: &str,
    titles: &[String],
    batch: usize,
    out: &Path,
    device: &Device,
) -> anyhow::Result<store::TextEmbeddings> {
    let path = out.join(store::TEXT_EMBEDDINGS_FILE);
    let hash = store::titles_hash(titles);
    if let Some(cached) = cached_embeddings(&path, backbone, titles.len(), &hash)? {
        return Ok(cached);
    }
    let source = crate::model_source::resolve(backbone)?;
    let loaded = crate::model_source::load(&source, device)?;
    let model = &loaded.backbone.model;
    let d = model.hidden_size();
    let fallback = loaded.tokenizer.eos_id().or(loaded.tokenizer.bos_id()).unwrap_or(0);
    let ids: Vec<Vec<u32>> = titles
        .iter()
        .map(|t| {
            let ids = loaded.tokenizer.try_encode(t)?;
            // An empty title is read as the end-of-text token alone.
            Ok(if ids.is_empty() { vec![fallback] } else { ids })
        })
        .collect::<anyhow::Result<_>>()?;
    // Batches of titles of similar length waste little on padding.
    let mut order: Vec<usize> = (0..titles.len()).collect();
    order.sort_by_key(|&i| (ids[i].len(), i));
    let bar = crate::progress::step_bar("{prefix:>9} [{bar:30}] {pos}/{len} titles eta {eta}", "embed");
    crate::progress::start_steps(&bar, 0, titles.len() as u64);
    let t = Instant::now();
    let mut values = vec![0f32; titles.len() * d];
    for chunk in order.chunks(batch.max(1)) {
        let (b, l) = (chunk.len(), chunk.iter().map(|&i| ids[i].len()).max().unwrap_or(1));
        // Left padding with a mask: each row's hidden states are those of the title alone.
        let mut tok = vec![0i64; b * l];
        let mut real = vec![false; b * l];
        for (r, &i) in chunk.iter().enumerate() {
            let off = l - ids[i].len();
            for (j, &id) in ids[i].iter().enumerate() {
                tok[r * l + off + j] = i64::from(id);
                real[r * l + off + j] = true;
            }
        }
        let tok = Tensor::<2, Int>::from_data(TensorData::new(tok, [b, l]), device); // [B, L]
        let real = Tensor::<2, Bool>::from_data(TensorData::new(real, [b, l]), device); // [B, L]
        let h = model.hidden(HiddenInput::new(model.embed(tok)).with_padding(real.clone())).hidden; // [B, L, d]
        // Padding positions are replaced (not multiplied) by 0, so that nothing computed there can leak in.
        let pad = real.bool_not().unsqueeze_dim::<3>(2).expand([b, l, d]); // [B, L, d]
        let sum = h.mask_fill(pad, 0.0).sum_dim(1).reshape([b, d]); // [B, d]
        let v: Vec<f32> =
            sum.into_data().convert::<f32>().try_into_vec::<f32>().map_err(|e| anyhow::anyhow!("{e:?}"))?;
        for (r, &i) in chunk.iter().enumerate() {
            let len = ids[i].len() as f32;
            for (dst, &x) in values[i * d..(i + 1) * d].iter_mut().zip(&v[r * d..(r + 1) * d]) {
                *dst = x / len;
            }
        }
        bar.inc(b as u64);
    }
    bar.finish_and_clear();
    if let Some(bad) = values.iter().position(|x| !x.is_finite()) {
        bail!("the text embedding of title {} ({:?}) is not finite", bad / d, titles[bad / d]);
    }
    tracing::info!(titles = titles.len(), d, secs = format!("{:.1}", t.elapsed().as_secs_f64()), "text embeddings");
    let e = store::TextEmbeddings { backbone: backbone.into(), titles_hash: hash, d, values };
    store::write_text_embeddings(&path, &e)?;
    Ok(e)
}
