//! Paired comparisons of a result with the reference rows its manifest declares (`[report] compare`): LatentR³
//! against BIGRec, the full model against w/o RL, D3+LatentR³ against D3, N latent tokens against N = 1, the
//! original GRPO against LR-GRPO. Both evaluations score the same test users in the same order, so each
//! metric's difference `mean(ours) − mean(reference)` and relative gain `mean(ours) / mean(reference) − 1` get a
//! **paired** bootstrap interval: the users are resampled once per draw for both (`r3_metrics::relative_gains`'s
//! draws). Every metric is compared on all users and on the users whose target is a popular or an unpopular item
//! (`r3_data::Popularity`'s rule).

use std::fmt::Write as _;

use anyhow::{Context, bail};
use r3_data::Popularity;
use r3_metrics::BootstrapConfig;

use crate::execute::{RunState, eval_dir, run_state};
use crate::figures::{Bars, Built, Figure};
use crate::manifest::{Experiment, Scale, parse_metric};
use crate::outcome::{EvalOutcome, dataset_popularity};
use crate::plan::{Setting, plan};
use crate::results::{Comparison, PairedEntry, ResultFile};
use crate::stats::{diff_ci, gain_ci, mean};
use crate::tables::Results;

/// The paired comparison of `main` with `base` (the report evaluation of the experiment `reference`, whose paper
/// row is `row`) on every metric of `names`: on all users (`H@5`), then, when `popularity` is given, on the users
/// with a popular target (`popular H@5`) and with an unpopular one (`unpopular H@5`).
pub fn compare(
    (reference, row): (&str, &str),
    main: &EvalOutcome,
    base: &EvalOutcome,
    names: &[String],
    popularity: Option<&Popularity>,
) -> anyhow::Result<Comparison> {
    if main.item_ids != base.item_ids {
        bail!(
            "the evaluations of this experiment ({} users) and of `{reference}` ({} users) are not of the same users \
             in the same order: evaluate both with the same --limit and --seed",
            main.item_ids.len(),
            base.item_ids.len()
        );
    }
    let all: Vec<usize> = (0..main.ranks.len()).collect();
    let mut buckets: Vec<(&str, Vec<usize>)> = vec![("", all.clone())];
    if let Some(p) = popularity {
        for (bucket, want) in [("popular ", true), ("unpopular ", false)] {
            buckets.push((bucket, all.iter().copied().filter(|&i| p.is_popular(main.item_ids[i]) == want).collect()));
        }
    }
    let boot = BootstrapConfig::default();
    let mut entries = Vec::new();
    for (bucket, idx) in &buckets {
        for name in names {
            let (ndcg, k) = parse_metric(name)?;
            let pick = |o: &EvalOutcome| -> anyhow::Result<(Vec<f64>, Vec<Option<usize>>)> {
                let v = o.values(ndcg, k)?;
                Ok((idx.iter().map(|&i| v[i]).collect(), idx.iter().map(|&i| o.ranks[i]).collect()))
            };
            let ((a, ra), (b, rb)) = (pick(main)?, pick(base)?);
            let (gain, gain_ci95) = gain_ci(&boot, &ra, &rb, ndcg, k)?;
            let (ours, reference) = if idx.is_empty() { (f64::NAN, f64::NAN) } else { (mean(&a), mean(&b)) };
            entries.push(PairedEntry {
                name: format!("{bucket}{name}"),
                ours,
                reference,
                diff: ours - reference,
                diff_ci95: diff_ci(&boot, &a, &b),
                gain,
                gain_ci95,
                n: idx.len(),
            });
        }
    }
    // An empty bucket has no mean: leave it out rather than write a NaN.
    entries.retain(|e| e.n > 0);
    Ok(Comparison { reference: reference.into(), row: row.into(), users: main.ranks.len(), entries })
}

/// The comparisons of experiment `e`'s report evaluation `main` with each of its references at `setting`'s
/// scale, and a line for each reference that could not be compared (not run at this scale yet).
pub fn reference_comparisons(
    e: &Experiment,
    main: &EvalOutcome,
    all: &[Experiment],
    setting: &Setting,
    stem: &str,
) -> anyhow::Result<(Vec<Comparison>, Vec<String>)> {
    let (mut out, mut missing) = (Vec::new(), Vec::new());
    let names = e.manifest.report.metric_names();
    let mut popularity = None;
    for name in &e.manifest.report.compare {
        let r = all.iter().find(|x| &x.name == name).with_context(|| format!("no experiment `{name}`"))?;
        let runs = plan(&r.manifest, setting, stem)?;
        let run = runs.iter().find(|p| p.id == r.manifest.report.run).context("the reference's report run")?;
        if run_state(run) != RunState::Done {
            missing.push(format!(
                "`{name}`: it is not done at the {} scale; run it, then rerun this experiment (its own runs are done, so that takes seconds)",
                setting.scale
            ));
            continue;
        }
        let base = EvalOutcome::read(&eval_dir(run), run.kind)?;
        if popularity.is_none() {
            popularity = Some(dataset_popularity(&setting.data_dir, stem, main.coverage)?);
        }
        let c = compare((name, &r.manifest.paper.row), main, &base, &names, popularity.as_ref())
            .with_context(|| format!("comparing with `{name}`"))?;
        out.push(c);
    }
    Ok((out, missing))
}

/// The experiments in an order where each one's references come before it (when they are among them), otherwise
/// in the given order.
pub fn references_first<'a, T>(items: Vec<T>, exp: impl Fn(&T) -> &'a Experiment) -> Vec<T> {
    let mut rest = items;
    let mut out: Vec<T> = Vec::with_capacity(rest.len());
    while !rest.is_empty() {
        let names: Vec<String> = rest.iter().map(|t| exp(t).name.clone()).collect();
        // The first whose references are all placed (or not among the items); a cycle takes the first.
        let pick =
            rest.iter().position(|t| exp(t).manifest.report.compare.iter().all(|c| !names.contains(c))).unwrap_or(0);
        out.push(rest.remove(pick));
    }
    out
}

fn signed(v: f64) -> String {
    format!("{v:+.4}")
}

fn percent(v: f64) -> String {
    format!("{:+.1}%", 100.0 * v)
}

/// One paired entry: `+0.0040 [-0.0100, +0.0180], +8.0% [-20.0%, +41.0%]`.
pub fn fmt_paired(p: &PairedEntry) -> String {
    let mut s = signed(p.diff);
    if let Some([lo, hi]) = p.diff_ci95 {
        let _ = write!(s, " [{}, {}]", signed(lo), signed(hi));
    }
    if let Some(g) = p.gain {
        let _ = write!(s, ", {}", percent(g));
        if let Some([lo, hi]) = p.gain_ci95 {
            let _ = write!(s, " [{}, {}]", percent(lo), percent(hi));
        }
    }
    s
}

/// The "Δ vs … [95% CI]" cell of a result: for each reference the manifest declares, the paired difference of the
/// first reported metric on all users and its relative gain; `—` where the result holds no comparison with it
/// (its reference was not run, or the result predates comparisons: nothing is invented); `–` for no reference.
pub fn delta_cell(e: &Experiment, r: Option<&ResultFile>, all: &[Experiment]) -> String {
    let refs = &e.manifest.report.compare;
    if refs.is_empty() {
        return "–".into();
    }
    let metric = e.manifest.report.metric_names().into_iter().next().unwrap_or_default();
    let lines: Vec<String> = refs
        .iter()
        .map(|name| {
            let row = all.iter().find(|x| &x.name == name).map_or(name.as_str(), |x| x.manifest.paper.row.as_str());
            let found = r.and_then(|r| r.comparisons.iter().find(|c| &c.reference == name));
            match found.and_then(|c| c.entry(&metric)) {
                Some(p) => format!("vs {row}: {metric} {}", fmt_paired(p)),
                None => format!("vs {row}: —"),
            }
        })
        .collect();
    lines.join("<br>")
}

/// One bar: a value and its interval.
type Bar = Option<(f64, Option<[f64; 2]>)>;

/// The paired-differences figure: for each result with comparisons (at its largest scale), the difference of
/// H@10 and N@10 on all users against each reference, with the paired intervals.
pub fn paired_figure(experiments: &[Experiment], results: &Results) -> Option<Built> {
    let metrics = ["H@10", "N@10"];
    let mut categories = Vec::new();
    let mut values: Vec<Vec<Bar>> = vec![Vec::new(); metrics.len()];
    for e in experiments {
        let Some(r) = Scale::ALL.iter().rev().find_map(|s| results.get(&(e.name.clone(), *s))) else { continue };
        for c in &r.comparisons {
            categories.push(format!("{} {} − {} ({})", r.column, e.manifest.paper.row, c.row, r.scale));
            for (m, v) in metrics.iter().zip(values.iter_mut()) {
                v.push(c.entry(m).map(|p| (p.diff, p.diff_ci95)));
            }
        }
    }
    if categories.is_empty() {
        return None;
    }
    let series = metrics.iter().map(|m| m.to_string()).zip(values).collect();
    let width = (300 + 140 * categories.len() as u32).min(2400);
    Some((
        "paired-differences".to_string(),
        (width, 500),
        Figure::Bars(Bars {
            title: "paired differences with their reference rows (95% paired bootstrap)".into(),
            y_desc: "ours − reference".into(),
            categories,
            series,
        }),
    ))
}

#[cfg(test)]
pub(crate) mod tests;
