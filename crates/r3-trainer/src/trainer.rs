//! The generic loop: seeded epoch orders, batches of training items, the schedule, validation with the best
//! checkpoint kept and early stopping, atomic checkpoints, exact resume, the metrics file and progress.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, LoopState, RunKey};
use crate::error::Error;
use crate::progress::{EvalMeta, NoProgress, Progress, StartInfo, StepMeta};
use crate::run::{self, MetricsFile, RunEnv};
use crate::stage::{Stage, StepAt, Stepped};

/// The end of a run (or of a session stopped by the hook).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoopSummary {
    /// The run folder.
    pub run_dir: PathBuf,
    /// Optimizer steps taken.
    pub steps: u64,
    /// The optimizer steps the schedule was laid out for.
    pub total_steps: u64,
    /// The best validation metric (`None` when no validation ran).
    pub best_metric: Option<f64>,
    /// The step of the best validation; the stage holds its weights when the run finished.
    pub best_step: Option<u64>,
    /// The last validation metric of this session.
    pub last_metric: Option<f64>,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// Whether the run ended normally (all epochs, `max_steps` or early stopping).
    pub finished: bool,
    /// Whether the stop hook interrupted the run.
    pub interrupted: bool,
    /// Units trained on ([`LoopState::seen`]).
    pub seen: u64,
    /// Seconds of training over all sessions.
    pub elapsed_s: f64,
}

/// The order of the training items in `epoch`: `random.shuffle(list(range(n)))` of a CPython generator seeded
/// with the key `[seed_lo, seed_hi, epoch]`, so each epoch's order depends only on the seed and the epoch (a
/// resumed run regenerates it).
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    r3_data::raw::PyRandom::from_key(&[seed as u32, (seed >> 32) as u32, epoch as u32]).shuffle(&mut order);
    order
}

/// The clock of a session: training seconds over all sessions, and the mean step time of this one.
struct Clock {
    start: Instant,
    first_step: u64,
    elapsed_before: f64,
}

impl Clock {
    fn elapsed(&self) -> f64 {
        self.elapsed_before + self.start.elapsed().as_secs_f64()
    }

    fn mean_step_s(&self, step: u64) -> f64 {
        self.start.elapsed().as_secs_f64() / (step - self.first_step).max(1) as f64
    }
}

/// The loop of one stage. Build it with [`Trainer::new`] (a fresh run) or [`Trainer::resume`], then call
/// [`Trainer::run`].
pub struct Trainer<S: Stage> {
    stage: S,
    run_dir: PathBuf,
    state: LoopState,
    last_checkpoint: Option<PathBuf>,
    last_metric: Option<f64>,
    progress: Box<dyn Progress<S::Record>>,
    stop_after_steps: Option<u64>,
    /// The epoch whose order is cached, and the order.
    order: Option<(usize, Vec<usize>)>,
}

impl<S: Stage> Trainer<S> {
    /// Prepares a fresh run in `base` (or in `base/YYYYMMDD-HHMMSS` when `timestamped`): writes
    /// `config.resolved.toml` and `env.json`. `name` names the type to resume with in the error for a folder that
    /// already holds a run.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] when the folder already holds a run, [`Error::Data`] for a run of no steps, and
    /// the I/O errors of writing.
    pub fn new(stage: S, base: &Path, timestamped: bool, name: &str) -> Result<Self, S::Error> {
        let toml = stage.config_toml()?;
        let key = run_key(&stage, &toml);
        let total = stage.policy().total_steps(stage.train_len());
        if total == 0 {
            return Err(Error::Data {
                message: "the run has no optimizer step: check the data and the batch size".into(),
            }
            .into());
        }
        let env = RunEnv::collect(stage.device(), &stage.dtype());
        let run_dir = run::create_run_dir(base, timestamped, &toml, &env, name)?;
        tracing::info!(run_dir = %run_dir.display(), env = ?env, "run starts");
        Ok(Self::assemble(stage, run_dir, LoopState::fresh(total, Some(key))))
    }

    /// Continues the run in `run_dir` from its latest checkpoint (or from the start when it has none), after
    /// removing the partial checkpoints a killed session left. The stage must be built from the run's own
    /// `config.resolved.toml` and the same data; the continued run ends with the same weights as an
    /// uninterrupted one (bit-identical on the same device).
    ///
    /// # Errors
    /// [`Error::Checkpoint`] when the checkpoint's state does not fit the run (steps, epoch, sample order,
    /// config), and the errors of reading it.
    pub fn resume(mut stage: S, run_dir: &Path) -> Result<Self, S::Error> {
        let key = run_key(&stage, &stage.config_toml()?);
        let total = stage.policy().total_steps(stage.train_len());
        checkpoint::remove_stale(run_dir)?;
        let mut state = LoopState::fresh(total, Some(key.clone()));
        let mut last_checkpoint = None;
        if let Some(dir) = checkpoint::latest(run_dir)? {
            let saved = checkpoint::load_state(&dir)?;
            check_state(&saved, &state, &stage, &dir)?;
            stage.load(&dir)?;
            state = LoopState { run: Some(key), ..saved };
            tracing::info!(checkpoint = %dir.display(), step = state.step, "resuming the run");
            last_checkpoint = Some(dir);
        } else {
            tracing::info!(run_dir = %run_dir.display(), "no checkpoint yet: the run restarts from step 0");
        }
        if !run_dir.join(run::ENV_FILE).exists() {
            run::write_json(&run_dir.join(run::ENV_FILE), &RunEnv::collect(stage.device(), &stage.dtype()))?;
        }
        let mut trainer = Self::assemble(stage, run_dir.to_path_buf(), state);
        trainer.last_checkpoint = last_checkpoint;
        Ok(trainer)
    }

    fn assemble(stage: S, run_dir: PathBuf, state: LoopState) -> Self {
        Trainer {
            stage,
            run_dir,
            state,
            last_checkpoint: None,
            last_metric: None,
            progress: Box::new(NoProgress),
            stop_after_steps: None,
            order: None,
        }
    }

    /// Reports progress to `progress`.
    pub fn with_progress(mut self, progress: Box<dyn Progress<S::Record>>) -> Self {
        self.progress = progress;
        self
    }

    /// Returns from [`Trainer::run`] after optimizer step `step` (with a checkpoint only when the stage's policy
    /// says [`crate::Policy::checkpoint_on_stop`]): what a kill at that moment leaves behind (tests of resume).
    pub fn stop_after_steps(mut self, step: u64) -> Self {
        self.stop_after_steps = Some(step);
        self
    }

    /// The stage.
    pub fn stage(&self) -> &S {
        &self.stage
    }

    /// The stage, to change it between construction and [`Trainer::run`].
    pub fn stage_mut(&mut self) -> &mut S {
        &mut self.stage
    }

    /// The run folder.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// Where the loop stands (where a resumed trainer continues).
    pub fn state(&self) -> &LoopState {
        &self.state
    }

    /// The last checkpoint written or resumed from, for messages (or a note that there is none).
    pub fn checkpoint_text(&self) -> String {
        self.last_checkpoint
            .as_ref()
            .map_or_else(|| "none (no checkpoint was written yet)".into(), |p| p.display().to_string())
    }

    /// Trains until the last epoch, `max_steps`, early stopping or the stop hook. When the run finishes, the best
    /// checkpoint's weights are restored into the stage ([`Stage::load_best`]) and `summary.json` is written.
    /// Returns the stage (holding the model) and the summary.
    ///
    /// # Errors
    /// The stage's errors (the last good checkpoint stays), and the I/O errors of the metrics and checkpoints.
    pub fn run(mut self) -> Result<(S, LoopSummary), S::Error> {
        let n = self.stage.train_len();
        self.progress.on_start(&StartInfo {
            run_dir: &self.run_dir,
            start_step: self.state.step,
            total_steps: self.state.total_steps,
            train_len: n,
            valid_len: self.stage.valid_len(),
        });
        let mut metrics = MetricsFile::<S::Record>::open(&self.run_dir, self.state.step)?;
        let clock = Clock { start: Instant::now(), first_step: self.state.step, elapsed_before: self.state.elapsed_s };
        let mut interrupted = false;
        while !self.state.finished {
            let idx = self.batch(n);
            let epoch = self.state.epoch;
            self.train_batch(&idx, &mut metrics, &clock)?;
            let epoch_end = self.advance(n);
            if self.after_batch(epoch_end, epoch, &mut metrics)? {
                tracing::warn!(step = self.state.step, "stopped by the stop_after_steps hook");
                interrupted = true;
                break;
            }
        }
        self.finish(interrupted)
    }

    /// The training items of the next batch.
    fn batch(&mut self, n: usize) -> Vec<usize> {
        let (epoch, size) = (self.state.epoch, self.stage.policy().batch);
        if self.order.as_ref().is_none_or(|(e, _)| *e != epoch) {
            self.order = Some((epoch, self.stage.epoch_order(epoch)));
        }
        let order = &self.order.as_ref().expect("set above").1;
        let start = self.state.batch_in_epoch * size;
        order[start..(start + size).min(n)].to_vec()
    }

    /// The optimizer steps of one batch (one per iteration), each recorded and reported.
    fn train_batch(
        &mut self,
        idx: &[usize],
        metrics: &mut MetricsFile<S::Record>,
        clock: &Clock,
    ) -> Result<(), S::Error> {
        let batch_step = self.state.step;
        for iteration in 0..self.stage.policy().iterations.max(1) {
            let t0 = Instant::now();
            let lr = self.stage.policy().schedule.lr(self.state.step);
            let checkpoint = self.checkpoint_text();
            let at = StepAt {
                idx,
                lr,
                step: self.state.step + 1,
                epoch: self.state.epoch,
                iteration,
                batch_step,
                checkpoint: &checkpoint,
            };
            let Stepped { output, seen } = self.stage.step(&at)?;
            let s = &mut self.state;
            s.step += 1;
            s.seen += seen;
            s.elapsed_s = clock.elapsed();
            let meta = StepMeta {
                step: s.step,
                total_steps: s.total_steps,
                epoch: s.epoch,
                lr,
                step_s: t0.elapsed().as_secs_f64().max(1e-9),
                elapsed_s: s.elapsed_s,
                eta_s: clock.mean_step_s(s.step) * s.total_steps.saturating_sub(s.step) as f64,
            };
            let record = self.stage.step_record(output, &meta);
            metrics.write(&record)?;
            self.progress.on_step(&record, &meta);
            if self.state.step >= self.state.total_steps {
                break;
            }
        }
        Ok(())
    }

    /// Moves past the batch just trained; returns whether it ended the epoch.
    fn advance(&mut self, n: usize) -> bool {
        let batches = self.stage.policy().batches_per_epoch(n);
        let s = &mut self.state;
        s.batch_in_epoch += 1;
        let epoch_end = s.batch_in_epoch == batches;
        if epoch_end {
            s.epoch += 1;
            s.batch_in_epoch = 0;
        }
        if s.step >= s.total_steps {
            s.finished = true;
        }
        epoch_end
    }

    /// Validation, checkpoint and the stop hook after a batch; returns whether the hook stops the run.
    fn after_batch(
        &mut self,
        epoch_end: bool,
        epoch: usize,
        metrics: &mut MetricsFile<S::Record>,
    ) -> Result<bool, S::Error> {
        let p = self.stage.policy().clone();
        let step = self.state.step;
        let eval_now = p.validate
            && (self.state.finished
                || (p.eval_at_epoch_end && epoch_end)
                || (p.eval_every > 0 && step.is_multiple_of(p.eval_every)));
        let improved = eval_now && self.evaluate(epoch, metrics)?;
        let finished = self.state.finished;
        let stop_now = !finished && self.stop_after_steps.is_some_and(|k| step >= k);
        let save_now = (eval_now && (p.checkpoint_every_eval || improved))
            || finished
            || (p.checkpoint_every > 0 && step.is_multiple_of(p.checkpoint_every))
            || (stop_now && p.checkpoint_on_stop);
        if save_now {
            self.save_checkpoint()?;
        }
        Ok(stop_now)
    }

    /// Validates, updates the best metric and early stopping, records and reports; returns whether it improved.
    fn evaluate(&mut self, epoch: usize, metrics: &mut MetricsFile<S::Record>) -> Result<bool, S::Error> {
        let step = self.state.step;
        let (metric, eval) = self.stage.validate(step, &self.checkpoint_text())?;
        let p = self.stage.policy();
        let (patience, higher) = (p.patience, p.higher_is_better);
        let s = &mut self.state;
        // HF EarlyStoppingCallback with threshold 0: an evaluation improves when it is strictly better.
        let improved = s.best_metric.is_none_or(|b| if higher { metric > b } else { metric < b });
        if improved {
            s.best_metric = Some(metric);
            s.best_step = Some(step);
            s.patience_counter = 0;
        } else {
            s.patience_counter += 1;
        }
        self.last_metric = Some(metric);
        let best = s.best_metric.unwrap_or(metric);
        tracing::info!(step, epoch, metric, best, improved, "validation");
        if patience > 0 && s.patience_counter >= patience && !s.finished {
            tracing::info!(step, patience, "early stopping");
            s.finished = true;
            s.stopped_early = true;
        }
        let meta = EvalMeta { step, epoch, metric, best, improved };
        let record = self.stage.eval_record(eval, &meta);
        metrics.write(&record)?;
        self.progress.on_eval(&record, &meta);
        Ok(improved)
    }

    fn save_checkpoint(&mut self) -> Result<(), S::Error> {
        let keep = self.stage.policy().keep_checkpoints;
        let stage = &self.stage;
        let dir = checkpoint::save(&self.run_dir, &self.state, keep, |tmp| stage.save(tmp))?;
        tracing::debug!(checkpoint = %dir.display(), "checkpoint written");
        self.last_checkpoint = Some(dir);
        Ok(())
    }

    fn finish(mut self, interrupted: bool) -> Result<(S, LoopSummary), S::Error> {
        let s = &self.state;
        if s.finished
            && let Some(best) = s.best_step
            && best != s.step
        {
            let dir = checkpoint::step_dir(&self.run_dir, best);
            tracing::info!(checkpoint = %dir.display(), best_step = best, "restoring the best checkpoint");
            self.stage.load_best(&dir)?;
        }
        let summary = LoopSummary {
            run_dir: self.run_dir.clone(),
            steps: s.step,
            total_steps: s.total_steps,
            best_metric: s.best_metric,
            best_step: s.best_step,
            last_metric: self.last_metric,
            stopped_early: s.stopped_early,
            finished: s.finished,
            interrupted,
            seen: s.seen,
            elapsed_s: s.elapsed_s,
        };
        if !interrupted {
            run::write_json(&self.run_dir.join(run::SUMMARY_FILE), &self.stage.summary(&summary))?;
        }
        tracing::info!(summary = ?summary, "run ended");
        self.progress.on_end(&summary);
        Ok((self.stage, summary))
    }
}

fn run_key<S: Stage>(stage: &S, toml: &str) -> RunKey {
    RunKey { train_len: stage.train_len(), seed: stage.policy().seed, config_hash: run::config_hash(toml) }
}

/// Checks a checkpoint's state against the run about to resume (`fresh` is that run's fresh state).
fn check_state<S: Stage>(saved: &LoopState, fresh: &LoopState, stage: &S, dir: &Path) -> Result<(), Error> {
    let bad = |message: String| Err(Error::Checkpoint { path: dir.join(checkpoint::STATE_FILE), message });
    let n = stage.train_len();
    if let (Some(a), Some(b)) = (&saved.run, &fresh.run) {
        if a.train_len != b.train_len {
            return bad(format!(
                "the checkpoint was written for {} training items but this run has {}: resume with the same data \
                 (`data.sample`, `data.stem`) as the interrupted run",
                a.train_len, b.train_len
            ));
        }
        if a.seed != b.seed {
            return bad(format!(
                "the checkpoint's sample order was seeded with {} but the run's config says {}: resume with the \
                 run's own config.resolved.toml",
                a.seed, b.seed
            ));
        }
        if a.config_hash != b.config_hash {
            return bad("the run's config.resolved.toml changed since this checkpoint was written: restore the file \
                        (or start a new run with the new settings)"
                .into());
        }
    }
    if saved.total_steps != fresh.total_steps {
        return bad(format!(
            "the checkpoint was laid out for {} steps but these {n} training items give {}: resume with the same \
             data (`data.sample`, `data.stem`) as the interrupted run",
            saved.total_steps, fresh.total_steps
        ));
    }
    if saved.step > saved.total_steps {
        return bad(format!(
            "step {} is beyond the run's {} steps: the file is damaged; delete this checkpoint folder to resume from \
             an earlier one",
            saved.step, saved.total_steps
        ));
    }
    let p = stage.policy();
    let per_epoch = p.batches_per_epoch(n);
    let expected = (saved.epoch as u64 * per_epoch as u64 + saved.batch_in_epoch as u64) * p.iterations.max(1);
    if !saved.finished && (saved.epoch >= p.epochs || saved.batch_in_epoch >= per_epoch || saved.step != expected) {
        return bad(format!(
            "step {} does not fit epoch {} batch {} of this run ({per_epoch} batches per epoch, {} epochs: step \
             {expected} expected): the file is damaged; delete this checkpoint folder to resume from an earlier one",
            saved.step, saved.epoch, saved.batch_in_epoch, p.epochs
        ));
    }
    Ok(())
}
