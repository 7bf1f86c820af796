//! The overfitting check of issue 4 on the real model and data: LatentR³ SFT of SmolLM2-135M (full fine-tuning,
//! thought row and LatentRATT included) on 32 CDs train samples drives the loss below 0.1 within a bounded number
//! of optimizer steps. The sequences are cut to their last 40 tokens (`data.cutoff`: the end of the prompt, the
//! thought token and the whole target) so that the check fits CI on 2 cores.

use std::sync::{Arc, Mutex};

use r3_backbone::gguf::Gguf;
use r3_backbone::vocab::bpe_vocab;
use r3_data::{Dataset, Split, Tokenizer};
use r3_train::progress::{StepInfo, TrainProgress};
use r3_train::{SftConfig, SftData, SftTrainer, build_latent, seeded_subset};

/// The optimizer steps the loss gets to fall below 0.1 (one step = the 32 samples).
const MAX_STEPS: u64 = 12;
/// The length of the learning-rate schedule (linear decay to 0): longer than the run, so that the rate is still
/// 0.4–1 × the peak during the steps that count.
const SCHEDULE_STEPS: u64 = 20;

struct Losses(Arc<Mutex<Vec<f64>>>);

impl TrainProgress for Losses {
    fn on_step(&mut self, info: &StepInfo) {
        self.0.lock().unwrap().push(info.loss);
    }
}

#[test]
fn latent_sft_overfits_32_cds_samples() {
    let path = r3_backbone::fetch::fetched_path("smollm2-135m").unwrap_or_else(|e| panic!("{e}"));
    let out = tempfile::tempdir().unwrap();
    let config = SftConfig::from_toml_str(
        "",
        "overfit",
        &[
            "model.id=\"smollm2-135m\"".into(),
            "data.stem=\"CDs_and_Vinyl_5_2015-10-2018-11\"".into(),
            "data.cutoff=40".into(),
            "train.batch=32".into(),
            "train.micro_batch=16".into(),
            format!("train.epochs={SCHEDULE_STEPS}"),
            "train.warmup=0".into(),
            "train.lr=1e-3".into(),
            "train.patience=0".into(),
            "train.checkpoint_every=1000".into(),
            format!("run.output_dir={:?}", out.path().display().to_string()),
        ],
    )
    .unwrap();
    let device = burn::tensor::Device::flex().autodiff();
    let tokenizer = Tokenizer::from_bpe_vocab(bpe_vocab(&Gguf::open(&path).unwrap()).unwrap()).unwrap();
    let loaded = r3_backbone::load_gguf(&path, &device).unwrap();
    let setup = {
        // LatentRATT's initial weights come from the device's generator: seed it so that every run is the same
        // (holding it, so that no test beside this one draws between the seed and the initialisation).
        let _rng = crate::device_rng();
        device.seed(0);
        build_latent(loaded, tokenizer, &config).unwrap()
    };
    let data_dir = r3_data::shared_data_dir().expect("the shared data folder");
    let dataset = Dataset::load(&data_dir, &config.data.stem).unwrap();
    let rows = dataset.split(Split::Train);
    let train: Vec<_> = seeded_subset(rows.len(), 32, 0)
        .into_iter()
        .map(|i| setup.encoder.encode_sample(&rows[i], true).unwrap())
        .collect();
    assert!(train.iter().all(|s| s.len() <= 40), "cutoff keeps at most 40 tokens");
    // Validation on 4 of the training samples: the check is about fitting the training set.
    let valid = train[..4].to_vec();
    let (n, thought, pad) = (setup.encoder.n_thought(), setup.encoder.thought_id().unwrap(), setup.encoder.pad_id());
    let data = SftData { train, valid, collate: Box::new(move |s| r3_data::SftBatch::new(s, n, thought, pad)) };
    let losses = Arc::new(Mutex::new(Vec::new()));
    let trainer = SftTrainer::new(config, setup.model, data, device)
        .unwrap()
        .with_progress(Box::new(Losses(losses.clone())))
        .stop_after_steps(MAX_STEPS);
    let outcome = trainer.run().unwrap();
    let losses = losses.lock().unwrap().clone();
    eprintln!("overfit: losses per step {losses:.4?}");
    assert_eq!(outcome.summary.steps, MAX_STEPS);
    let first_below = losses.iter().position(|&l| l < 0.1);
    assert!(first_below.is_some(), "the loss did not fall below 0.1 within {MAX_STEPS} steps: {losses:.4?}");
    assert!(losses[0] > 2.0, "the first loss {:.3} should be that of an untrained model", losses[0]);
}

/// `build_latent` seeds the device with `train.seed` before LatentRATT's random initialisation: the same seed gives
/// bit-identical initial weights whatever the device's generator did before, another seed different ones.
#[test]
fn build_latent_initialises_latentratt_from_the_run_seed() {
    let path = r3_backbone::fetch::fetched_path("smollm2-135m").unwrap_or_else(|e| panic!("{e}"));
    let device = burn::tensor::Device::flex();
    let q_weight = |seed: u64| -> Vec<f32> {
        let overrides = [
            "model.id=\"smollm2-135m\"".to_string(),
            "data.stem=\"CDs_and_Vinyl_5_2015-10-2018-11\"".to_string(),
            format!("train.seed={seed}"),
        ];
        let config = SftConfig::from_toml_str("", "seeded", &overrides).unwrap();
        let tokenizer = Tokenizer::from_bpe_vocab(bpe_vocab(&Gguf::open(&path).unwrap()).unwrap()).unwrap();
        let loaded = r3_backbone::load_gguf(&path, &device).unwrap();
        // The generator is shared with the tests running beside this one: hold it from the draw below to the
        // end of `build_latent`.
        let _rng = crate::device_rng();
        // Move the generator, so that only `build_latent`'s own seeding can make two builds equal.
        let _ = burn::tensor::Tensor::<1>::random([7], burn::tensor::Distribution::Default, &device);
        let setup = build_latent(loaded, tokenizer, &config).unwrap();
        let ratt = setup.model.ratt.expect("LatentRATT is on by default");
        ratt.q.weight.val().into_data().try_to_vec::<f32>().unwrap()
    };
    let (a, b, c) = (q_weight(3), q_weight(3), q_weight(4));
    assert_eq!(a, b, "the same seed gives the same LatentRATT");
    assert_ne!(a, c, "another seed gives another LatentRATT");
}
