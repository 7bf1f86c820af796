//! Against the PyTorch reference (`shared/golden/smollm2/latent_golden.json`, see its README):
//!
//! - `grpo.rewards[g][0]` is the −PPL reward of the un-noised sample of group g, computed by the reference from the
//!   same two-pass forward whose per-token target log-probs are stored as `examples[g].target_logp`; our
//!   `neg_ppl` of those log-probs must agree. Tolerance 1e-5 relative (the reference reduces in f32).
//! - `beam[p]` holds 10 real constrained-beam hypotheses (`beams` ids ending with EOS, `titles`): `rank` must give
//!   the same value whether it matches by title or by id. To regenerate the reference, see the README.

use r3_rewards::{Decoded, NegPpl, Rank, Reward, RewardInput, Sample};
use serde_json::Value;

fn golden() -> Value {
    let path = r3_data::repo_root()
        .expect("the repository root")
        .join("..")
        .join("shared")
        .join("golden")
        .join("smollm2")
        .join("latent_golden.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array().expect("an array").iter().map(|x| x.as_f64().expect("a number") as f32).collect()
}

fn u32s(v: &Value) -> Vec<u32> {
    v.as_array().expect("an array").iter().map(|x| x.as_u64().expect("an id") as u32).collect()
}

#[test]
fn neg_ppl_matches_the_reference_rewards() {
    let g = golden();
    let examples = g["examples"].as_array().expect("examples");
    let logps: Vec<Vec<f32>> = examples.iter().map(|e| f32s(&e["target_logp"])).collect();
    // |y| counts every target token including EOS: the log-probs align with the target ids.
    for (e, lp) in examples.iter().zip(&logps) {
        let ids = u32s(&e["target_ids"]);
        assert_eq!(lp.len(), ids.len());
        assert_eq!(ids.last(), g["eos_id"].as_u64().map(|x| x as u32).as_ref());
    }
    let samples: Vec<Sample<'_>> = logps.iter().map(|l| Sample::new(l)).collect();
    let ours = NegPpl.evaluate(&RewardInput::new(&samples)).unwrap();
    let want: Vec<f64> = (0..examples.len()).map(|i| g["grpo"]["rewards"][i][0].as_f64().expect("a reward")).collect();
    let maxrel = ours.iter().zip(&want).map(|(o, w)| ((o - w) / w).abs()).fold(0.0, f64::max);
    assert!(
        maxrel < 1e-5,
        "neg_ppl {ours:?} vs reference {want:?}: max relative diff {maxrel:e}; if the reference changed, regenerate \
         it (shared/golden/README.md)"
    );
}

#[test]
fn rank_by_title_equals_rank_by_id_on_real_beams() {
    let g = golden();
    let lp = [0.0f32];
    for (p, beam) in g["beam"].as_array().expect("beam").iter().enumerate() {
        let titles: Vec<String> = beam["titles"]
            .as_array()
            .expect("titles")
            .iter()
            .map(|t| t.as_str().expect("a title").to_owned())
            .collect();
        let ids: Vec<Vec<u32>> = beam["beams"].as_array().expect("beams").iter().map(u32s).collect();
        assert_eq!(titles.len(), 10);
        // The real target: the untrained reference model misses it in all three prompts, so rank = 0.
        let target = beam["target_title"].as_str().expect("target_title");
        let samples = [Sample::new(&lp).with_decoded(Decoded::from_titles(&titles, target))];
        assert_eq!(Rank.evaluate(&RewardInput::new(&samples)).unwrap(), [0.0], "prompt {p}");
        // Each beam taken as the target: 1/(i+1), by title and by id alike.
        for i in 0..titles.len() {
            let by_title = [Sample::new(&lp).with_decoded(Decoded::from_titles(&titles, &titles[i]))];
            let by_id = [Sample::new(&lp).with_decoded(Decoded::from_ids(&ids, &ids[i]))];
            let want = [1.0 / (i as f64 + 1.0)];
            assert_eq!(Rank.evaluate(&RewardInput::new(&by_title)).unwrap(), want, "prompt {p} beam {i} by title");
            assert_eq!(Rank.evaluate(&RewardInput::new(&by_id)).unwrap(), want, "prompt {p} beam {i} by id");
        }
    }
}
