//! What the trainer hands a reward: one [`Sample`] per sampled latent (LR-GRPO) or per completion (GRPO).

use r3_metrics::{strip_prediction, strip_target_text};

use crate::error::{Error, Result};

/// The input of [`Reward::score`](crate::Reward::score): every sample of one group or batch, in the trainer's
/// order (the scores come back in the same order).
#[derive(Debug, Clone, Copy)]
pub struct RewardInput<'a> {
    /// The samples.
    pub samples: &'a [Sample<'a>],
}

impl<'a> RewardInput<'a> {
    /// The input over `samples`.
    pub fn new(samples: &'a [Sample<'a>]) -> Self {
        Self { samples }
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether there is no sample.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

/// One sample: the target's per-token log-probs under the sampled latent, and the decoded candidates when the
/// trainer decoded.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample<'a> {
    /// `log π(y_i | x, r_k, y_<i)` for every target token `y_i`, EOS included, so `|y| = len` (docs/method.md §4, step 2).
    /// Natural-log probabilities, normalised over the full vocabulary.
    pub target_log_probs: &'a [f32],
    /// The decoded candidates and the target, present when the trainer decoded (it must, for every sample, when a
    /// configured reward's [`Reward::needs_decoding`](crate::Reward::needs_decoding) is true).
    pub decoded: Option<Decoded<'a>>,
}

impl<'a> Sample<'a> {
    /// A sample with log-probs only (LR-GRPO needs nothing more).
    pub fn new(target_log_probs: &'a [f32]) -> Self {
        Self { target_log_probs, decoded: None }
    }

    /// The same sample with decoded candidates.
    pub fn with_decoded(self, decoded: Decoded<'a>) -> Self {
        Self { decoded: Some(decoded), ..self }
    }

    /// The decoded candidates, or [`Error::MissingDecoding`] naming `reward` and `sample` (this sample's index).
    pub fn decoded_for(&self, reward: &str, sample: usize) -> Result<&Decoded<'a>> {
        self.decoded.as_ref().ok_or_else(|| Error::MissingDecoding { reward: reward.to_owned(), sample })
    }
}

/// The decoded candidates of one sample, best first, and the target to compare them with.
///
/// Candidates and target are matched by title when both titles are given (the official evaluation compares
/// strings: [`strip_prediction`] on the candidate, [`strip_target_text`] on the target), else by token ids
/// when both id lists are given (exact sequence equality; give both with or both without the EOS id). For vanilla
/// GRPO a sample decodes one completion, so `titles` holds one element.
#[derive(Debug, Clone, Copy, Default)]
pub struct Decoded<'a> {
    /// The generated texts, best first, as decoded (`"Abbey Road"\n` or `Abbey Road`: both strip alike).
    pub titles: Option<&'a [String]>,
    /// The generated token ids of the same candidates, best first (for example the beam search's hypotheses).
    pub ids: Option<&'a [Vec<u32>]>,
    /// The target title (the dataset's `output` text or the plain catalogue title).
    pub target_title: Option<&'a str>,
    /// The target ids (`encode('"' + title + '"\n') + [eos]`, as `r3_data` encodes them).
    pub target_ids: Option<&'a [u32]>,
}

const MATCH_HINT: &str = "the trainer must pass `titles` with `target_title`, or `ids` with `target_ids`, in \
                          `Decoded` (see `Decoded::from_titles` and `Decoded::from_ids`)";

impl<'a> Decoded<'a> {
    /// Candidates and target given as text.
    pub fn from_titles(titles: &'a [String], target_title: &'a str) -> Self {
        Self { titles: Some(titles), target_title: Some(target_title), ..Self::default() }
    }

    /// Candidates and target given as token ids.
    pub fn from_ids(ids: &'a [Vec<u32>], target_ids: &'a [u32]) -> Self {
        Self { ids: Some(ids), target_ids: Some(target_ids), ..Self::default() }
    }

    /// The 0-based rank of the target among the candidates, or `None` when no candidate matches.
    ///
    /// NOTE: like the official evaluation (`r3_metrics::title_rank`), the *last* matching candidate wins. The
    /// candidates of a constrained beam search are distinct trie paths, so at most one matches and the rule only
    /// matters for unconstrained decoding.
    ///
    /// `reward` and `sample` name the caller in the [`Error::CannotMatch`] raised when the candidates cannot be
    /// compared with the target (no title pair and no id pair, or title and id lists of different lengths).
    ///
    /// ```
    /// use r3_rewards::Decoded;
    /// let beams = ["\"Help!\"\n".to_string(), "\"Revolver\"\n".to_string()];
    /// assert_eq!(Decoded::from_titles(&beams, "Revolver").rank("rank", 0)?, Some(1));
    /// assert_eq!(Decoded::from_titles(&beams, "Abbey Road").rank("rank", 0)?, None);
    /// # Ok::<(), r3_rewards::Error>(())
    /// ```
    pub fn rank(&self, reward: &str, sample: usize) -> Result<Option<usize>> {
        Ok((0..self.num_candidates(reward, sample)?).rev().find(|&i| self.is_target(i)))
    }

    /// Whether candidate `i` (0 = best) matches the target; `false` past the last candidate. Errors as
    /// [`Decoded::rank`].
    pub fn matches(&self, i: usize, reward: &str, sample: usize) -> Result<bool> {
        Ok(i < self.num_candidates(reward, sample)? && self.is_target(i))
    }

    /// The number of candidates, after checking that the candidates can be matched with the target.
    pub fn num_candidates(&self, reward: &str, sample: usize) -> Result<usize> {
        let err = |message: String| Error::CannotMatch { reward: reward.to_owned(), sample, message, hint: MATCH_HINT };
        if let (Some(titles), Some(ids)) = (self.titles, self.ids)
            && titles.len() != ids.len()
        {
            return Err(err(format!("{} titles but {} id sequences", titles.len(), ids.len())));
        }
        match (self.titles, self.target_title, self.ids, self.target_ids) {
            (Some(titles), Some(_), _, _) => Ok(titles.len()),
            (_, _, Some(ids), Some(_)) => Ok(ids.len()),
            _ => Err(err(format!(
                "got titles: {}, target title: {}, ids: {}, target ids: {}",
                self.titles.is_some(),
                self.target_title.is_some(),
                self.ids.is_some(),
                self.target_ids.is_some()
            ))),
        }
    }

    /// Whether candidate `i` (in range, after [`Decoded::num_candidates`] succeeded) matches the target: by
    /// title when both titles are given, else by ids.
    fn is_target(&self, i: usize) -> bool {
        match (self.titles, self.target_title, self.ids, self.target_ids) {
            (Some(titles), Some(target), _, _) => strip_prediction(&titles[i]) == strip_target_text(target),
            (_, _, Some(ids), Some(target)) => ids[i] == target,
            _ => false,
        }
    }
}
