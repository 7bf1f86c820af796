//! The GRPO stage (docs/method.md §4 stage 2) of the generic loop: optimizer steps of `train.batch` prompts split into
//! micro-steps of one advantage pool each (gradient accumulation), AdamW on LatentRATT only with warm-up and
//! cosine decay, global clipping, per-step diagnostics, validation by beam search (NDCG@k, higher is better).

use std::path::Path;
use std::sync::Arc;

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::tensor::Device;
use r3_data::{EncodedSample, SftBatch};
use r3_decode::{BeamSearchConfig, Recommender, RecommenderInput};
use r3_latent::{LatentModel, LatentRatt};
use r3_metrics::{Cutoffs, PerSample, strip_target_text, title_rank};
use r3_rewards::{Combined, Registry, Reward};
use r3_trainer::checkpoint;
use r3_trainer::parallel::{ParallelConfig, Peers, shares};
use r3_trainer::{CosineSchedule, EvalMeta, LoopSummary, Policy, Schedule, Stage, StepAt, StepMeta, Stepped};

use crate::advantage::mean_std;
use crate::config::{Algorithm, GrpoConfig};
use crate::error::{Error, Result};
use crate::metrics::{GrpoMetric, GrpoStepInfo, GrpoSummary};
use crate::pools::{GrpoJob, MicroStats, PoolRunner, apply_update, peer_step, reward_counts};
use crate::step::Generation;
use crate::trainer::{GrpoData, freeze_backbone, total_steps};

/// Validation HR@k and NDCG@k at the cut-offs `k`.
pub(crate) type Ranking = (Vec<usize>, Vec<f64>, Vec<f64>);

/// The GRPO stage: the model (frozen backbone, trainable LatentRATT), the frozen reference, the reward, the
/// optimizer, the data, and the data-parallel peers when there are several.
pub(crate) struct GrpoStage {
    pub(crate) config: GrpoConfig,
    pub(crate) model: LatentModel,
    reference: Option<LatentRatt>,
    reward: Arc<Combined>,
    optimizer: ModuleOptimizer,
    data: GrpoData,
    device: Device,
    policy: Policy,
    parallel: Option<Peers<GrpoJob, Error>>,
    /// The generations of the current batch, reused by its later iterations.
    generations: Vec<Option<Generation>>,
}

fn policy(config: &GrpoConfig, n_train: usize) -> Policy {
    let t = &config.train;
    Policy {
        batch: t.batch,
        drop_last: true,
        epochs: t.epochs,
        max_steps: t.max_steps,
        iterations: config.grpo.num_iterations as u64,
        seed: t.seed,
        schedule: Schedule::Cosine(CosineSchedule {
            peak_lr: t.lr,
            warmup: t.warmup,
            total: total_steps(config, n_train),
        }),
        validate: config.eval.every > 0,
        eval_every: config.eval.every,
        eval_at_epoch_end: false,
        checkpoint_every: t.checkpoint_every,
        checkpoint_every_eval: false,
        checkpoint_on_stop: true,
        keep_checkpoints: config.run.keep_checkpoints,
        patience: 0,
        higher_is_better: true,
    }
}

impl GrpoStage {
    /// Checks the model and the data and builds the stage (the backbone is frozen here).
    pub(crate) fn assemble(
        config: GrpoConfig,
        model: LatentModel,
        (data, device): (GrpoData, Device),
        registry: &Registry,
    ) -> Result<Self> {
        let Some(ratt) = model.ratt.clone() else {
            return Err(Error::Data {
                message: "the model has no LatentRATT: GRPO trains LatentRATT only (load an SFT model folder with \
                          `latent.ratt = true`)"
                    .into(),
            });
        };
        if model.n_latent == 0 {
            return Err(Error::Data { message: "the model has no latent token (BIGRec): nothing to perturb".into() });
        }
        if total_steps(&config, data.train.len()) == 0 {
            return Err(Error::Data {
                message: format!(
                    "{} train prompts make no whole batch of `train.batch` = {}: lower the batch or raise `data.sample`",
                    data.train.len(),
                    config.train.batch
                ),
            });
        }
        if config.grpo.algorithm == Algorithm::Grpo && data.items.is_none() {
            return Err(Error::Data { message: "the original GRPO samples over the item trie: pass `items`".into() });
        }
        if config.eval.every > 0 && (data.valid.is_none() || data.items.is_none()) {
            return Err(Error::Data {
                message: "`eval.every` > 0 needs validation users and the item trie; set `eval.every = 0` to skip"
                    .into(),
            });
        }
        let reward = Arc::new(registry.build(&config.grpo.reward_specs())?);
        let reference = (config.grpo.beta > 0.0).then(|| ratt.valid());
        let stage = GrpoStage {
            optimizer: config.train.optimizer().adamw(),
            policy: policy(&config, data.train.len()),
            config,
            model: freeze_backbone(model),
            reference,
            reward,
            data,
            device,
            parallel: None,
            generations: Vec::new(),
        };
        stage.check_decoding()?;
        Ok(stage)
    }

    /// Builds the rewards of `grpo.rewards` from `registry` (see `GrpoTrainer::with_registry`).
    pub(crate) fn set_registry(&mut self, registry: &Registry) -> Result<()> {
        if self.parallel.is_some() {
            return Err(Error::Data {
                message: "set the reward registry before `with_parallel`: the replicas share the trainer's reward"
                    .into(),
            });
        }
        self.reward = Arc::new(registry.build(&self.config.grpo.reward_specs())?);
        self.check_decoding()
    }

    fn check_decoding(&self) -> Result<()> {
        if self.reward.needs_decoding() && self.data.items.is_none() {
            return Err(Error::Data {
                message: format!(
                    "the reward `{}` reads decoded candidates: the trainer needs the item trie (`GrpoData::items`)",
                    self.reward.name()
                ),
            });
        }
        Ok(())
    }

    fn ratt(&self) -> &LatentRatt {
        self.model.ratt.as_ref().expect("checked in assemble")
    }

    /// Starts the data-parallel peers (see `GrpoTrainer::with_parallel`).
    pub(crate) fn start_parallel(&mut self, parallel: &ParallelConfig) -> Result<()> {
        let mut peers = parallel.connect()?.into_iter();
        let peer = peers.next().ok_or_else(|| Error::Data { message: "no local peer".into() })?;
        self.model = peer.sync_from_rank0(self.model.clone())?;
        let started = Peers::start(peer, peers.collect(), "r3-grpo-peer", |p| {
            let device = p.device().clone().autodiff();
            let mut model = self.model.clone().fork(&device);
            let mut optimizer = self.optimizer.clone();
            let reference = self.reference.clone().map(|r| r.fork(&p.device().clone()));
            let reward = self.reward.clone();
            let items = self.data.items.clone();
            let (eos_id, config) = (self.data.eos_id, self.config.clone());
            let counts_k = (config.train.batch, config.grpo.advantage_groups, config.grpo.group_size);
            let mut generations: Vec<Option<Generation>> = Vec::new();
            Ok(move |job: GrpoJob| -> Result<()> {
                let runner = PoolRunner {
                    config: &config,
                    model: &model,
                    reward: reward.as_ref(),
                    reference: reference.as_ref(),
                    items: items.as_ref(),
                    eos_id,
                    device: &device,
                    checkpoint: "(rank 0's)",
                };
                let counts = reward_counts(counts_k.0, counts_k.1, counts_k.2);
                let (next, _, _) = peer_step(&runner, &mut optimizer, &p, &job, &mut generations, &counts)?;
                model = next;
                Ok(())
            })
        })?;
        let groups = self.config.grpo.advantage_groups;
        tracing::info!(local_peers = parallel.devices.len(), reduction = ?parallel.reduction, advantage_groups = groups, "GRPO data parallelism");
        self.parallel = Some(started);
        Ok(())
    }

    /// Validation NDCG@k and HR@k (k = `eval.k`) on the fixed validation subset, by constrained beam search.
    pub(crate) fn ranking(&self) -> Result<Ranking> {
        let (Some(valid), Some(items)) = (&self.data.valid, &self.data.items) else {
            return Err(Error::Data { message: "no validation data".into() });
        };
        let e = &self.config.eval;
        let model = self.model.valid();
        let search = BeamSearchConfig::new(self.data.eos_id).with_num_beams(e.beams).with_num_return_sequences(e.beams);
        let rec =
            Recommender::new(RecommenderInput { model: &model, encoder: &valid.encoder, items, search: &search })?;
        let mut ranks = Vec::with_capacity(valid.samples.len());
        for (chunk, titles) in valid.samples.chunks(e.batch).zip(valid.titles.chunks(e.batch)) {
            let prompts: Vec<EncodedSample> =
                chunk.iter().map(|s| EncodedSample { target_ids: Vec::new(), ..s.clone() }).collect();
            let out = rec.recommend_encoded(&prompts);
            for (user, title) in out.users.iter().zip(titles) {
                let preds: Vec<String> = user.iter().map(|r| r.predict_text()).collect();
                ranks.push(title_rank(&preds, strip_target_text(title)));
            }
        }
        let mut ks: Vec<usize> = [1, 5, 10].into_iter().filter(|&k| k <= e.beams).collect();
        if !ks.contains(&e.k) {
            ks.push(e.k);
            ks.sort_unstable();
        }
        let cutoffs = Cutoffs::new(ks.clone())?;
        let m = PerSample::from_ranks(&ranks, &cutoffs).mean();
        Ok((ks, m.hr, m.ndcg))
    }

    /// The model being trained.
    pub(crate) fn into_model(self) -> LatentModel {
        self.model.valid()
    }

    /// One optimizer step over the prompts `at.idx`: `batch / G` micro-steps, accumulated, clipped, AdamW on
    /// LatentRATT. On the first iteration of a batch the micro-steps generate (noise, rewards, advantages); later
    /// iterations reuse the generations.
    fn optimizer_step(&mut self, at: &StepAt<'_>) -> Result<GrpoStepInfo> {
        if at.iteration == 0 {
            self.generations.clear();
        }
        let c = &self.config;
        let micro: Vec<&[usize]> = at.idx.chunks(c.grpo.advantage_groups).collect();
        let n_micro = micro.len();
        let batch_of = |chunk: &[usize]| {
            (self.data.collate)(&chunk.iter().map(|&i| self.data.train[i].clone()).collect::<Vec<EncodedSample>>())
        };
        let runner = PoolRunner {
            config: c,
            model: &self.model,
            reward: self.reward.as_ref(),
            reference: self.reference.as_ref(),
            items: self.data.items.as_ref(),
            eos_id: self.data.eos_id,
            device: &self.device,
            checkpoint: at.checkpoint,
        };
        let pools = |ranks: Option<(usize, usize)>| -> Vec<(usize, SftBatch)> {
            let ms = ranks.map_or_else(|| (0..n_micro).collect(), |(rank, world)| shares(n_micro, rank, world));
            ms.into_iter().map(|m| (m, batch_of(micro[m]))).collect()
        };
        let (generation_step, iteration, lr, step_no) = (at.batch_step, at.iteration, at.lr, at.step);
        let job = |pools: Vec<(usize, SftBatch)>| GrpoJob { pools, n_micro, generation_step, iteration, lr, step_no };
        let (stats, grad_norm) = if let Some(par) = &self.parallel {
            let world = par.peer().world_size();
            let counts = reward_counts(at.idx.len(), c.grpo.advantage_groups, c.grpo.group_size);
            let generations = &mut self.generations;
            let optimizer = &mut self.optimizer;
            let (model, stats, norm) = par.step(
                |rank| job(pools(Some((rank, world)))),
                |peer| {
                    peer_step(&runner, optimizer, peer, &job(pools(Some((peer.rank(), world)))), generations, &counts)
                },
            )?;
            self.model = model;
            (stats, norm)
        } else {
            let (grads, stats) = runner.run(&job(pools(None)), &mut self.generations)?;
            let update = (c.train.clip, lr, step_no);
            let norm =
                apply_update(&mut self.model, &mut self.optimizer, grads.unwrap_or_default(), update, at.checkpoint)?;
            (stats.into_iter().map(|(_, s)| s).collect(), norm)
        };
        Ok(step_info(&stats, grad_norm, at.idx.len()))
    }
}

/// The diagnostics of an optimizer step from those of its micro-steps (the loop fills in its position).
fn step_info(stats: &[MicroStats], grad_norm: f64, prompts: usize) -> GrpoStepInfo {
    let n_micro = stats.len().max(1) as f64;
    let rewards: Vec<f64> = stats.iter().flat_map(|s| s.rewards.iter().copied()).collect();
    let (reward_mean, reward_std) = mean_std(&rewards);
    let kls: Vec<f64> = stats.iter().filter_map(|s| s.kl).collect();
    GrpoStepInfo {
        step: 0,
        total_steps: 0,
        epoch: 0,
        loss: stats.iter().map(|s| s.loss).sum::<f64>() / n_micro,
        reward_mean,
        reward_std,
        equal_reward_groups: stats.iter().map(|s| s.equal).sum::<f64>() / prompts as f64,
        advantage_norm: stats.iter().map(|s| s.adv_norm).sum::<f64>() / n_micro,
        clip_ratio: stats.iter().map(|s| s.clip).sum::<f64>() / n_micro,
        kl: (!kls.is_empty()).then(|| kls.iter().sum::<f64>() / n_micro),
        grad_norm,
        lr: 0.0,
        samples_per_s: 0.0,
        elapsed_s: 0.0,
    }
}

impl Stage for GrpoStage {
    type Error = Error;
    type Record = GrpoMetric;
    type Output = GrpoStepInfo;
    type Eval = Ranking;
    type Summary = GrpoSummary;

    fn policy(&self) -> &Policy {
        &self.policy
    }

    fn train_len(&self) -> usize {
        self.data.train.len()
    }

    fn valid_len(&self) -> usize {
        self.data.valid.as_ref().map_or(0, |v| v.samples.len())
    }

    fn config_toml(&self) -> Result<String> {
        self.config.to_toml()
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn step(&mut self, at: &StepAt<'_>) -> Result<Stepped<GrpoStepInfo>> {
        let info = self.optimizer_step(at)?;
        Ok(Stepped { output: info, seen: (self.config.train.batch * self.config.grpo.group_size) as u64 })
    }

    fn step_record(&self, info: GrpoStepInfo, meta: &StepMeta) -> GrpoMetric {
        let samples = (self.config.train.batch * self.config.grpo.group_size) as f64;
        let info = GrpoStepInfo {
            step: meta.step,
            total_steps: meta.total_steps,
            epoch: meta.epoch,
            samples_per_s: samples / meta.step_s,
            elapsed_s: meta.elapsed_s,
            lr: meta.lr,
            ..info
        };
        tracing::info!(
            step = info.step,
            loss = info.loss,
            reward_mean = info.reward_mean,
            reward_std = info.reward_std,
            equal_groups = info.equal_reward_groups,
            adv_norm = info.advantage_norm,
            clip_ratio = info.clip_ratio,
            kl = info.kl,
            grad_norm = info.grad_norm,
            lr = info.lr,
            samples_per_s = info.samples_per_s,
            "step"
        );
        GrpoMetric::Step(info)
    }

    fn validate(&mut self, _step: u64, _checkpoint: &str) -> Result<(f64, Ranking)> {
        let (ks, hr, ndcg) = self.ranking()?;
        let at = ks.iter().position(|&k| k == self.config.eval.k).unwrap_or(0);
        Ok((ndcg[at], (ks, hr, ndcg)))
    }

    fn eval_record(&self, (k, hr, ndcg): Ranking, meta: &EvalMeta) -> GrpoMetric {
        GrpoMetric::Eval { step: meta.step, k, hr, ndcg, improved: meta.improved }
    }

    fn save(&self, dir: &Path) -> Result<()> {
        checkpoint::save_model(dir, self.ratt())?;
        checkpoint::save_optimizer(dir, &self.optimizer)?;
        Ok(())
    }

    fn load(&mut self, dir: &Path) -> Result<()> {
        let ratt = self.model.ratt.take().expect("checked in assemble");
        self.model.ratt = Some(checkpoint::load_model(dir, ratt)?);
        let optimizer = std::mem::replace(&mut self.optimizer, self.config.train.optimizer().adamw());
        self.optimizer = checkpoint::load_optimizer(dir, optimizer)?;
        Ok(())
    }

    fn summary(&self, summary: &LoopSummary) -> GrpoSummary {
        GrpoSummary::from(summary)
    }
}
