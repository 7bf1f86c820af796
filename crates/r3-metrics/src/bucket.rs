//! Metrics and gains per bucket of samples (for example popular / unpopular target items).
//!
//! The caller gives one label per sample, such as `r3_data::Popularity::bucket(item_id)` of the sample's target;
//! buckets are reported in label order, each with its own sample count, and the means of a bucket are over its
//! samples only.

use std::collections::BTreeMap;

use crate::bootstrap::{BootstrapConfig, Gain, relative_gains};
use crate::error::{Error, Result};
use crate::eval::{Metrics, PerSample};

/// The metrics of one bucket.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BucketMetrics {
    /// The bucket's label.
    pub bucket: String,
    /// HR@K and NDCG@K over the bucket's samples (`n` is the bucket's sample count).
    #[serde(flatten)]
    pub metrics: Metrics,
}

/// The relative gains of one bucket.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BucketGains {
    /// The bucket's label.
    pub bucket: String,
    /// The bucket's sample count.
    pub n: usize,
    /// The gains, HR@K then NDCG@K per cut-off.
    pub gains: Vec<Gain>,
}

/// The sample indices of each label, labels sorted.
pub fn bucket_indices<L: AsRef<str>>(labels: &[L]) -> BTreeMap<String, Vec<usize>> {
    let mut out: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, l) in labels.iter().enumerate() {
        out.entry(l.as_ref().to_string()).or_default().push(i);
    }
    out
}

fn check_labels(n: usize, labels: usize) -> Result<()> {
    if n == labels {
        Ok(())
    } else {
        Err(Error::Mismatch {
            what: "number of bucket labels",
            expected: n,
            got: labels,
            hint: "pass one label per sample, in sample order",
        })
    }
}

/// HR@K and NDCG@K of each bucket; `labels[i]` is the bucket of sample `i`.
pub fn metrics_by_bucket<L: AsRef<str>>(per_sample: &PerSample, labels: &[L]) -> Result<Vec<BucketMetrics>> {
    check_labels(per_sample.len(), labels.len())?;
    Ok(bucket_indices(labels)
        .into_iter()
        .map(|(bucket, idx)| BucketMetrics { bucket, metrics: per_sample.subset(&idx).mean() })
        .collect())
}

/// The relative gains of `ours` over `baseline` within each bucket, each bucket bootstrapped on its own samples
/// with the same configuration (and so the same seed).
pub fn gains_by_bucket<L: AsRef<str>>(
    ours: &PerSample,
    baseline: &PerSample,
    labels: &[L],
    config: &BootstrapConfig,
) -> Result<Vec<BucketGains>> {
    check_labels(ours.len(), labels.len())?;
    check_labels(baseline.len(), labels.len())?;
    bucket_indices(labels)
        .into_iter()
        .map(|(bucket, idx)| {
            let gains = relative_gains(&ours.subset(&idx), &baseline.subset(&idx), config)?;
            Ok(BucketGains { bucket, n: idx.len(), gains })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::Cutoffs;

    #[test]
    fn buckets_average_over_their_own_samples() {
        // Ranks: s0 = 0 (pop), s1 = 2 (unpop), s2 = miss (pop), s3 = 4 (unpop), cut-offs 1, 5.
        // popular   {s0, s2}: HR@1 = 1/2, HR@5 = 1/2, NDCG@5 = (1/log2(2) + 0)/2 = 0.5.
        // unpopular {s1, s3}: HR@1 = 0, HR@5 = 2/2 = 1, NDCG@5 = (1/log2(4) + 1/log2(6))/2
        //                     = (0.5 + 0.386853)/2 = 0.443426.
        let c = Cutoffs::new(vec![1, 5]).unwrap();
        let s = PerSample::from_ranks(&[Some(0), Some(2), None, Some(4)], &c);
        let b = metrics_by_bucket(&s, &["popular", "unpopular", "popular", "unpopular"]).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].bucket.as_str(), b[0].metrics.n), ("popular", 2));
        assert_eq!(b[0].metrics.hr, [0.5, 0.5]);
        assert_eq!(b[0].metrics.ndcg, [0.5, 0.5]);
        assert_eq!((b[1].bucket.as_str(), b[1].metrics.n), ("unpopular", 2));
        assert_eq!(b[1].metrics.hr, [0.0, 1.0]);
        let expect = (0.5 + 1.0 / 6f64.log2()) / 2.0;
        assert!((b[1].metrics.ndcg[1] - expect).abs() < 1e-15 && (expect - 0.443426).abs() < 1e-6);
        assert!(matches!(metrics_by_bucket(&s, &["popular"]), Err(Error::Mismatch { .. })));
    }

    #[test]
    fn bucket_gains_are_per_bucket() {
        // Ours doubles the hits of the baseline in bucket "a" (2 vs 1 of 4) and equals it in bucket "b".
        let c = Cutoffs::new(vec![1]).unwrap();
        let ours = PerSample::from_ranks(&[Some(0), Some(0), None, None, Some(0), None], &c);
        let base = PerSample::from_ranks(&[Some(0), None, None, None, Some(0), None], &c);
        let labels = ["a", "a", "a", "a", "b", "b"];
        let g = gains_by_bucket(&ours, &base, &labels, &BootstrapConfig::default()).unwrap();
        assert_eq!((g[0].bucket.as_str(), g[0].n, g[0].gains[0].gain), ("a", 4, Some(1.0)));
        assert_eq!((g[1].bucket.as_str(), g[1].n, g[1].gains[0].gain), ("b", 2, Some(0.0)));
    }
}
