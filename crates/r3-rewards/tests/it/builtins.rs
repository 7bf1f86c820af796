//! Hand-computed values of every built-in reward (arithmetic in the comments, as RecBole's metric tests do).

use r3_rewards::{
    Decoded, ExactMatch, LogLikelihood, NegPpl, Rank, Reduction, Reward, RewardInput, Sample, exact_match,
    mean_log_prob, neg_ppl, sum_log_prob,
};

use crate::{assert_close, ln};

#[test]
fn neg_ppl_hand_computed() {
    // Sample 0: p = (1/2, 1/8) → mean ln p = (ln 1/2 + ln 1/8)/2 = ln(1/16)/2 = ln(1/4) → PPL 4 → s = −4.
    // Sample 1: p = (1, 1, 1) → mean 0 → PPL 1 → s = −1 (the best possible value).
    // Sample 2: p = (1/3) → PPL 3 → s = −3.
    // Sample 3: p = (1/2, 1/4, 1/8, 1/16) → mean = −(1+2+3+4)·ln 2/4 = −2.5·ln 2 → PPL = 2^2.5 = 5.656854…
    // → s = −5.656854.
    let lp = [
        vec![ln(0.5), ln(0.125)],
        vec![0.0, 0.0, 0.0],
        vec![ln(1.0 / 3.0)],
        vec![ln(0.5), ln(0.25), ln(0.125), ln(0.0625)],
    ];
    let samples: Vec<Sample<'_>> = lp.iter().map(|l| Sample::new(l)).collect();
    let s = NegPpl.evaluate(&RewardInput::new(&samples)).unwrap();
    assert_close(&s, &[-4.0, -1.0, -3.0, -(2f64.powf(2.5))], 1e-5);
    assert!(!NegPpl.needs_decoding());
    assert_eq!(NegPpl.name(), "neg_ppl");
    // The plain functions agree: Σ = ln(1/16) = −2.772589; mean = −1.386294.
    assert!((sum_log_prob(&lp[0]) - (1.0f64 / 16.0).ln()).abs() < 1e-6);
    assert!((mean_log_prob(&lp[0]).unwrap() - 0.25f64.ln()).abs() < 1e-6);
    assert_eq!(neg_ppl(&lp[1]), Some(-1.0));
}

#[test]
fn log_likelihood_mean_and_sum() {
    // p = (1/2, 1/8): sum = ln(1/16) = −2.7725887, mean = ln(1/4) = −1.3862944.
    // p = (1/4): sum = mean = ln(1/4).
    let a = [ln(0.5), ln(0.125)];
    let b = [ln(0.25)];
    let samples = [Sample::new(&a), Sample::new(&b)];
    let input = RewardInput::new(&samples);
    let mean = LogLikelihood { reduction: Reduction::Mean }.evaluate(&input).unwrap();
    let sum = LogLikelihood { reduction: Reduction::Sum }.evaluate(&input).unwrap();
    assert_close(&mean, &[0.25f64.ln(), 0.25f64.ln()], 1e-6);
    assert_close(&sum, &[(1.0f64 / 16.0).ln(), 0.25f64.ln()], 1e-6);
    // The default reduction is the mean, and −ln(−neg_ppl) is the mean log-prob.
    assert_eq!(LogLikelihood::default().reduction, Reduction::Mean);
    let s = NegPpl.evaluate(&input).unwrap();
    assert_close(&s.iter().map(|v| (-v).ln()).map(|v| -v).collect::<Vec<_>>(), &mean, 1e-6);
}

#[test]
fn exact_match_hand_computed() {
    let lp = [ln(0.5)];
    // The official strip: completion.strip(" \n").strip('"').strip(" ") vs target.strip(' \n"').
    let hit = ["\"Abbey Road\"\n".to_string()]; // → "Abbey Road" == "Abbey Road": 1.
    let spaced = [" \" Abbey Road \" \n".to_string()]; // → "Abbey Road": 1.
    let miss = ["\"Abbey Road (Remastered)\"\n".to_string()]; // → a different title: 0.
    let second = ["\"Help!\"\n".to_string(), "\"Abbey Road\"\n".to_string()]; // only the first counts: 0.
    let none: [String; 0] = []; // nothing decoded: 0.
    let target = "\"Abbey Road\"\n"; // The dataset's `output` text; strips to "Abbey Road".
    let samples = [
        Sample::new(&lp).with_decoded(Decoded::from_titles(&hit, target)),
        Sample::new(&lp).with_decoded(Decoded::from_titles(&spaced, "Abbey Road")),
        Sample::new(&lp).with_decoded(Decoded::from_titles(&miss, target)),
        Sample::new(&lp).with_decoded(Decoded::from_titles(&second, target)),
        Sample::new(&lp).with_decoded(Decoded::from_titles(&none, target)),
    ];
    let s = ExactMatch.evaluate(&RewardInput::new(&samples)).unwrap();
    assert_eq!(s, [1.0, 1.0, 0.0, 0.0, 0.0]);
    assert!(ExactMatch.needs_decoding());
    // Case matters and inner quotes are kept, as in the official evaluation.
    assert!(!exact_match("\"abbey road\"\n", "Abbey Road"));
    assert!(exact_match("\"Don't \"Stop\" Me\"\n", "\"Don't \"Stop\" Me\"\n"));
}

#[test]
fn exact_match_by_ids() {
    // Only ids given (no titles): the first candidate's ids must equal the target ids exactly.
    let lp = [ln(0.5)];
    let target = [18u32, 44, 198, 2];
    let hit = [vec![18u32, 44, 198, 2], vec![18, 45, 198, 2]];
    let miss = [vec![18u32, 45, 198, 2], vec![18, 44, 198, 2]];
    let no_eos = [vec![18u32, 44, 198]];
    let samples = [
        Sample::new(&lp).with_decoded(Decoded::from_ids(&hit, &target)),
        Sample::new(&lp).with_decoded(Decoded::from_ids(&miss, &target)),
        Sample::new(&lp).with_decoded(Decoded::from_ids(&no_eos, &target)),
    ];
    assert_eq!(ExactMatch.evaluate(&RewardInput::new(&samples)).unwrap(), [1.0, 0.0, 0.0]);
}

#[test]
fn rank_hand_computed() {
    let lp = [ln(0.5)];
    let beams: Vec<String> = ["A", "B", "C", "D"].iter().map(|t| format!("\"{t}\"\n")).collect();
    // Target "A" at rank 0 → 1/1 = 1; "C" at rank 2 → 1/3; "D" at rank 3 → 1/4; "E" absent → 0.
    let targets = ["A", "C", "D", "E"];
    let samples: Vec<Sample<'_>> =
        targets.iter().map(|t| Sample::new(&lp).with_decoded(Decoded::from_titles(&beams, t))).collect();
    let s = Rank.evaluate(&RewardInput::new(&samples)).unwrap();
    assert_close(&s, &[1.0, 1.0 / 3.0, 0.25, 0.0], 1e-15);
    assert!(Rank.needs_decoding());
}

#[test]
fn rank_follows_the_official_last_match_rule_and_prefers_titles() {
    let lp = [ln(0.5)];
    // "A" appears at ranks 0 and 2; the official evaluation keeps the last match (rank 2) → 1/3.
    let beams: Vec<String> = ["A", "B", "A"].iter().map(|t| format!("\"{t}\"\n")).collect();
    // With both titles and ids, titles decide: the ids below would say rank 1 (→ 1/2), the titles say rank 2.
    let ids = [vec![1u32], vec![2], vec![3]];
    let target_ids = [2u32];
    let both = Decoded { ids: Some(&ids), target_ids: Some(&target_ids), ..Decoded::from_titles(&beams, "A") };
    // Ids alone: rank 1 → 1/2.
    let samples = [
        Sample::new(&lp).with_decoded(Decoded::from_titles(&beams, "A")),
        Sample::new(&lp).with_decoded(both),
        Sample::new(&lp).with_decoded(Decoded::from_ids(&ids, &target_ids)),
    ];
    let s = Rank.evaluate(&RewardInput::new(&samples)).unwrap();
    assert_close(&s, &[1.0 / 3.0, 1.0 / 3.0, 0.5], 1e-15);
}
