//! `latentr3 bench grpo`: the time of one GRPO micro-step (one advantage pool of `--prompts` prompts × `--k`
//! samples) on real CDs samples, with its backward pass and the AdamW step on LatentRATT.
//!
//! `--model` is a LatentR³ model folder (`RUN_DIR/model` of `latentr3 train sft`) or a backbone (an id, a .gguf
//! file, a Hugging Face folder): then a fresh `<|Thought|>` row and a randomly initialised LatentRATT are added.
//! The prompts are the first `--prompts` rows of the CDs train split, encoded with the paper template.
//!
//! - `--algorithm lr_grpo` (default) times exactly the trainer's micro-step ([`r3_grpo::GrpoStep::lr_grpo`]):
//!   pass 1 over each prompt once, the `K` noisy latents sharing its prefix KV cache in pass 2, the `neg_ppl`
//!   rewards, the batch advantage, the clipped surrogate, backward, AdamW.
//! - `--algorithm grpo` times the original GRPO's micro-step ([`r3_grpo::GrpoStep::grpo`]): constrained sampling of
//!   one rollout per noisy latent over the catalogue trie, exact-match rewards, the surrogate on the rollouts.
//! - `--naive` times the official per-sample computation instead ([`r3_grpo::naive_noisy_logp`]: two full passes
//!   over prompt and target for every sample) with the same loss, backward and AdamW.
//!
//! The median over `--runs` timed micro-steps after `--warmup` untimed ones is reported as prompts/s and
//! samples/s. `bench/grpo_vs_torch.py` runs the official trainer's step in PyTorch on the same prompts
//! (`--dump-batch`).

use std::path::PathBuf;

use anyhow::{Context, bail};
use burn::optim::{GradientsParams, ModuleOptimizer};
use r3_data::{Dataset, EncodedSample, SftBatch, Split};
use r3_decode::CatalogueTrie;
use r3_grpo::{
    AdvantageMode, GrpoStep, MicroStep, NoiseKey, NoiseShape, Rollouts, StepSettings, SurrogateInput, advantages,
    freeze_backbone, latent_noise, naive_noisy_logp, surrogate,
};
use r3_rewards::{Registry, RewardInput, Sample};
use r3_train::optim::FusedAdamW;
use r3_train::{LatentSetup, SftConfig, build_latent, load_model_dir};

use super::bench::{CommonArgs, median, time_runs};
use crate::model_source;

/// The dataset whose train rows make the benchmark prompts.
const STEM: &str = "CDs_and_Vinyl_5_2015-10-2018-11";

/// Which micro-step `latentr3 bench grpo` times.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchAlgorithm {
    /// LR-GRPO: noisy latents, −PPL of the target, no decoding.
    LrGrpo,
    /// The original GRPO: constrained rollouts, exact-match rewards.
    Grpo,
}

/// Arguments of `latentr3 bench grpo`.
#[derive(Debug, clap::Args)]
pub struct GrpoBenchArgs {
    /// A LatentR³ model folder, or a backbone (model id, .gguf file, Hugging Face folder) with a fresh LatentRATT.
    #[arg(long, default_value = "smollm2-135m")]
    pub model: String,
    /// Samples per prompt K.
    #[arg(long, default_value_t = 8)]
    pub k: usize,
    /// Prompts per micro-step (the advantage pool G).
    #[arg(long, default_value_t = 2)]
    pub prompts: usize,
    /// The micro-step to time.
    #[arg(long, value_enum, default_value_t = BenchAlgorithm::LrGrpo)]
    pub algorithm: BenchAlgorithm,
    /// Time the official per-sample two-pass computation instead of the shared prefix (LR-GRPO only).
    #[arg(long)]
    pub naive: bool,
    /// Timed micro-steps; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Also write the prompts (prompt and target ids, thought id) and the first micro-step's noise as JSON.
    #[arg(long)]
    pub dump_batch: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Runs `latentr3 bench grpo`.
pub fn run(args: &GrpoBenchArgs) -> anyhow::Result<()> {
    if args.k < 2 || args.prompts == 0 || args.runs == 0 {
        bail!("--k must be at least 2, --prompts and --runs at least 1");
    }
    if args.naive && args.algorithm == BenchAlgorithm::Grpo {
        bail!("--naive covers LR-GRPO only");
    }
    let dev = args.common.device()?;
    let autodiff = dev.clone().autodiff();
    let data_dir = args.common.data_dir()?;
    let folder = PathBuf::from(&args.model);
    let setup = if r3_train::latent::is_model_dir(&folder) {
        load_model_dir(&folder, &autodiff)?
    } else {
        let overrides = [format!("model.id={:?}", args.model), format!("data.stem={STEM:?}")];
        let config = SftConfig::from_toml_str("", "bench grpo", &overrides)?;
        let source = model_source::resolve(&args.model)?;
        let loaded = model_source::load(&source, &autodiff)?;
        build_latent(loaded.backbone, loaded.tokenizer, &config)?
    };
    let LatentSetup { model, encoder, .. } = setup;
    if model.ratt.is_none() || model.n_latent == 0 {
        bail!("{}: the model has no LatentRATT or no latent token; GRPO trains LatentRATT", args.model);
    }
    let model = freeze_backbone(model);
    let dataset =
        Dataset::load(&data_dir, STEM).with_context(|| format!("loading {STEM} from {}", data_dir.display()))?;
    let rows = dataset.split(Split::Train);
    if rows.len() < args.prompts {
        bail!("--prompts {} is larger than the {} train rows", args.prompts, rows.len());
    }
    let samples: Vec<EncodedSample> =
        rows[..args.prompts].iter().map(|r| encoder.encode_sample(r, true)).collect::<Result<_, _>>()?;
    let thought = encoder.thought_id().context("the encoder has no thought token")?;
    let batch = SftBatch::new(&samples, model.n_latent, thought, encoder.pad_id());
    let d = model.backbone.hidden_size();
    let shape = NoiseShape {
        groups: args.prompts,
        group_size: args.k,
        n_latent: model.n_latent,
        d_model: d,
        std: 1.5,
        unnoised_first: true,
    };
    if let Some(path) = &args.dump_batch {
        let noise = latent_noise(NoiseKey { seed: 0, step: 0, micro: 0 }, shape, &autodiff);
        let noise: Vec<f32> = noise.into_data().convert::<f32>().try_to_vec().map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let json = serde_json::json!({
            "model": args.model, "thought_id": thought, "k": args.k, "sigma": 1.5,
            "samples": samples.iter().map(|s| serde_json::json!({
                "prompt_ids": s.prompt_ids, "target_ids": s.target_ids,
            })).collect::<Vec<_>>(),
            "noise": noise,
        });
        std::fs::write(path, json.to_string()).with_context(|| format!("writing {}", path.display()))?;
    }
    let items = match args.algorithm {
        BenchAlgorithm::Grpo => Some(CatalogueTrie::new(&encoder, &dataset.catalogue)?),
        BenchAlgorithm::LrGrpo => None,
    };
    let (advantage, specs) = match args.algorithm {
        BenchAlgorithm::LrGrpo => (AdvantageMode::Batch, r3_rewards::lr_grpo_rewards()),
        BenchAlgorithm::Grpo => (AdvantageMode::Group, r3_rewards::grpo_rewards()),
    };
    let reward = Registry::default().build(&specs)?;
    let settings = StepSettings { group_size: args.k, advantage, epsilon_low: 0.2, epsilon_high: 0.28, beta: 0.0 };
    let mut optimizer = ModuleOptimizer::from(FusedAdamW::new(0.9, 0.999, 1e-8, 0.0));
    let mut model = model;
    let (mut last_loss, mut last_reward, mut rollout_tokens) = (f64::NAN, f64::NAN, 0usize);
    let times = time_runs(
        &dev,
        args.common.warmup.unwrap_or(1),
        args.runs,
        |run| latent_noise(NoiseKey { seed: 0, step: run as u64, micro: 0 }, shape, &autodiff),
        |run, noise| {
            let step = GrpoStep { model: &model, reward: &reward, settings, reference: None, decoding: None };
            let out: MicroStep = match (args.algorithm, args.naive) {
                (BenchAlgorithm::LrGrpo, false) => step.lr_grpo(&batch, noise)?,
                (BenchAlgorithm::LrGrpo, true) => naive_step(&step, &batch, noise)?,
                (BenchAlgorithm::Grpo, _) => {
                    let items = items.as_ref().context("trie")?;
                    let rollouts = Rollouts {
                        trie: items.trie(),
                        eos_id: encoder.eos_id(),
                        temperature: 1.0,
                        max_new_tokens: 128,
                        seed: run as u64,
                    };
                    step.grpo(&batch, noise, rollouts)?
                }
            };
            last_loss = out.loss_value;
            last_reward = out.generation.rewards.iter().sum::<f64>() / out.generation.rewards.len() as f64;
            rollout_tokens = out.generation.group_tokens.iter().sum();
            let mut grads = out.loss.backward();
            let ratt = model.ratt.take().context("LatentRATT")?;
            let params = GradientsParams::from_module(&mut grads, &ratt);
            model.ratt = Some(optimizer.step(1e-6, ratt, params));
            Ok(())
        },
    )?;
    let median = median(&times);
    let kind = match (args.algorithm, args.naive) {
        (BenchAlgorithm::LrGrpo, false) => "lr_grpo",
        (BenchAlgorithm::LrGrpo, true) => "lr_grpo_naive",
        (BenchAlgorithm::Grpo, _) => "grpo",
    };
    let samples_n = args.prompts * args.k;
    if args.common.json {
        let line = serde_json::json!({
            "kind": kind, "model": args.model, "prompts": args.prompts, "k": args.k, "median_s": median,
            "prompts_per_s": args.prompts as f64 / median, "samples_per_s": samples_n as f64 / median,
            "loss": last_loss, "reward_mean": last_reward, "scored_tokens": rollout_tokens, "runs": args.runs,
            "times_s": times,
        });
        println!("{line}");
    } else {
        println!(
            "{}: one {kind} micro-step of {} prompts × K = {} ({} scored tokens): median {:.3} s over {} runs, \
             {:.2} prompts/s, {:.1} samples/s",
            args.model,
            args.prompts,
            args.k,
            rollout_tokens,
            median,
            args.runs,
            args.prompts as f64 / median,
            samples_n as f64 / median
        );
    }
    Ok(())
}

/// The official per-sample computation of one LR-GRPO micro-step: two full passes per sample, then the same
/// rewards, advantages and surrogate as the trainer's.
fn naive_step(step: &GrpoStep<'_>, batch: &SftBatch, noise: burn::tensor::Tensor<3>) -> anyhow::Result<MicroStep> {
    let k = step.settings.group_size;
    let logp = naive_noisy_logp(step.model, batch, noise.clone()); // [G·K, T]
    let targets = step.model.targets(batch).expand(k);
    let t = batch.target_len;
    let values: Vec<f32> =
        logp.clone().into_data().convert::<f32>().try_to_vec().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let real: Vec<bool> =
        (0..batch.rows * k).flat_map(|i| batch.target_real[(i / k) * t..(i / k + 1) * t].to_vec()).collect();
    let rows: Vec<Vec<f32>> =
        (0..batch.rows * k).map(|i| (0..t).filter(|&j| real[i * t + j]).map(|j| values[i * t + j]).collect()).collect();
    let samples: Vec<Sample<'_>> = rows.iter().map(|r| Sample::new(r)).collect();
    let rewards = step.reward.evaluate(&RewardInput::new(&samples))?;
    let adv = advantages(&rewards, k, step.settings.advantage);
    let group_tokens: Vec<usize> = real.chunks(k * t).map(|g| g.iter().filter(|&&x| x).count()).collect();
    let out = surrogate(SurrogateInput {
        logp: logp.clone(),
        old_logp: logp.clone().detach(),
        ref_logp: None,
        real: targets.real.clone(),
        advantages: &adv,
        group_tokens: &group_tokens,
        epsilon_low: step.settings.epsilon_low,
        epsilon_high: step.settings.epsilon_high,
        beta: 0.0,
    });
    let loss_value = f64::from(out.loss.clone().into_scalar::<f32>());
    Ok(MicroStep {
        loss: out.loss,
        loss_value,
        clip_ratio: out.clip_ratio,
        kl: None,
        generation: r3_grpo::Generation {
            noise,
            targets,
            old_logp: logp.detach(),
            ref_logp: None,
            rewards,
            advantages: adv,
            group_tokens,
        },
    })
}
