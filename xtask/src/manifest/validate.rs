//! The checks of a manifest beyond its keys: every reference names an earlier run of the right kind, and each kind
//! has only the keys it uses. Every error names the run and says how to fix it.

use std::collections::HashSet;

use anyhow::{Context, bail};

use super::{Decoding, GuidanceSpec, Manifest, ReportKind, RunKind, RunSpec, Scale, parse_metric};

impl Manifest {
    /// Checks the references and the per-kind keys, naming the run and the fix.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.paper.table.is_empty() || self.paper.row.is_empty() || self.paper.column.is_empty() {
            bail!("[paper]: `table`, `row` and `column` must be set");
        }
        if self.experiment.dataset.is_empty() {
            bail!("[experiment]: `dataset` must name a stem or a category prefix ending in `*`");
        }
        for name in self.paper.values.keys() {
            parse_metric(name).with_context(|| "[paper] values")?;
        }
        let mut seen = HashSet::new();
        for r in &self.runs {
            if r.id.is_empty() {
                bail!("a [[run]] has no `id`");
            }
            self.validate_run(r, &seen)?;
            if !seen.insert(r.id.as_str()) {
                bail!("[[run]] `{}`: two runs share this id", r.id);
            }
        }
        self.validate_report()
    }

    /// The keys of run `r` fit its kind, and its `from` and `guidance` name earlier runs (`seen`) of the right kind.
    fn validate_run(&self, r: &RunSpec, seen: &HashSet<&str>) -> anyhow::Result<()> {
        let what = format!("[[run]] `{}`", r.id);
        let Some(kind) = r.kind else { bail!("{what}: `kind` must be sft, grpo, eval or baseline") };
        let from = match &r.from {
            Some(f) if !seen.contains(f.as_str()) => {
                bail!("{what}: `from = \"{f}\"` names no earlier run (list the runs in the order they run)")
            }
            Some(f) => self.run(f).map(RunSpec::kind),
            None => None,
        };
        keys_fit_kind(r, kind, &what)?;
        match kind {
            RunKind::Sft if r.from.is_some() => bail!("{what}: an sft run starts from `model.id`, not `from`"),
            RunKind::Grpo if from != Some(RunKind::Sft) => {
                bail!("{what}: a grpo run needs `from` = the id of an sft run")
            }
            RunKind::Eval => {
                let untuned = r.model.is_some() || Scale::ALL.iter().any(|s| r.at(*s).model.is_some());
                match (from, untuned) {
                    (Some(RunKind::Sft | RunKind::Grpo), false) | (None, true) => {}
                    _ => bail!(
                        "{what}: an eval run needs either `from` (an sft or grpo run) or `model` (an untuned model)"
                    ),
                }
            }
            RunKind::Baseline if r.model.is_none() && r.config.is_none() => {
                bail!("{what}: a baseline run needs `model` (sasrec, gru4rec, caser, alpharec) or `config`")
            }
            _ => {}
        }
        if let Some(g) = &r.guidance {
            self.validate_guidance(r, kind, g, seen, &what)?;
        }
        for scale in Scale::ALL {
            let Some(sw) = &r.at(scale).sweep else { continue };
            if !matches!(kind, RunKind::Sft | RunKind::Grpo) || sw.key.is_empty() || sw.values.len() < 2 {
                bail!(
                    "{what}: the {scale} scale's `sweep` needs an sft or grpo run, a `key` and at least two `values`"
                );
            }
        }
        Ok(())
    }

    /// D3's guidance: an eval run with D3's decoding, an earlier baseline run as the assistant, a finite scale.
    fn validate_guidance(
        &self,
        r: &RunSpec,
        kind: RunKind,
        g: &GuidanceSpec,
        seen: &HashSet<&str>,
        what: &str,
    ) -> anyhow::Result<()> {
        let GuidanceSpec { assistant: a, scale } = g;
        if kind != RunKind::Eval || r.decoding != Decoding::D3 {
            bail!("{what}: `guidance` steers D3's decoding: only an eval run with `decoding = \"d3\"` has one")
        }
        if !seen.contains(a.as_str()) || self.run(a).map(RunSpec::kind) != Some(RunKind::Baseline) {
            bail!("{what}: `assistant = \"{a}\"` names no earlier baseline run (list the assistant's run first)")
        }
        if !scale.is_finite() {
            bail!("{what}: the guidance `scale` must be a finite number");
        }
        Ok(())
    }

    /// `[report]` names evaluations (and a GRPO run for a training report) and metrics `H@K` / `N@K`.
    fn validate_report(&self) -> anyhow::Result<()> {
        let rep = &self.report;
        let is_eval = |id: &str| self.run(id).is_some_and(|r| matches!(r.kind(), RunKind::Eval | RunKind::Baseline));
        if !is_eval(&rep.run) {
            bail!("[report]: `run = \"{}\"` must name an eval or baseline run", rep.run);
        }
        match rep.kind {
            ReportKind::PopularityGain => match &rep.baseline {
                Some(b) if is_eval(b) => {}
                _ => bail!("[report]: a popularity_gain report needs `baseline` = the id of another eval run"),
            },
            ReportKind::Training => match &rep.train {
                Some(t) if self.run(t).is_some_and(|r| r.kind() == RunKind::Grpo) => {}
                _ => bail!("[report]: a training report needs `train` = the id of a grpo run"),
            },
            _ => {}
        }
        for m in rep.metric_names() {
            parse_metric(&m).with_context(|| "[report] metrics")?;
        }
        Ok(())
    }
}

/// The keys of a run that only some kinds have.
fn keys_fit_kind(r: &RunSpec, kind: RunKind, what: &str) -> anyhow::Result<()> {
    match kind {
        RunKind::Sft | RunKind::Grpo => {
            if r.config.is_none() {
                bail!("{what}: a {} run needs `config` (a run configuration file)", kind.name());
            }
            if r.model.is_some() || r.args.iter().chain(Scale::ALL.iter().flat_map(|s| &r.at(*s).args)).count() > 0 {
                bail!("{what}: `model` and `args` are for eval and baseline runs; use `set` overrides");
            }
        }
        RunKind::Eval => {
            if r.config.is_some() || !r.set.is_empty() {
                bail!("{what}: `config` and `set` are for sft, grpo (and baseline: `config`) runs");
            }
        }
        RunKind::Baseline => {
            if !r.set.is_empty() || Scale::ALL.iter().any(|s| !r.at(*s).set.is_empty()) {
                bail!("{what}: `latentr3 baseline train` has no --set; use `args`");
            }
        }
    }
    Ok(())
}
