//! LoRA through burn's generic `Module::apply_lora`: only the adapters (and what stays trainable) learn, and
//! the adapted model checkpoints and reloads like any other.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use r3_train::lora::apply_lora;
use r3_train::{LoraConfig, SftTrainer, checkpoint};

use crate::{TinyLm, ad_device, config, data, device_rng, loss_of, max_diff, samples, weights};

/// [`apply_lora`] holding the device's generator, which its adapters are drawn from.
fn adapt(model: TinyLm, lora: &LoraConfig) -> r3_train::Result<TinyLm> {
    let _rng = device_rng();
    apply_lora(model, lora)
}

/// The number of parameter values that require gradients.
fn trainable<M: Module>(model: &M) -> usize {
    struct Count(usize);
    impl ModuleVisitor for Count {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if param.is_require_grad() {
                self.0 += param.shape().num_elements();
            }
        }
    }
    let mut c = Count(0);
    model.visit(&mut c);
    c.0
}

#[test]
fn lora_trains_only_the_adapters_and_checkpoints() -> anyhow::Result<()> {
    let device = ad_device();
    let model = TinyLm::new(&device, 1);
    let full = model.num_params();
    assert_eq!(trainable(&model), full);
    let lora = LoraConfig { enabled: true, rank: 2, trainable: vec![], ..LoraConfig::default() };
    let adapted = adapt(model, &lora)?;
    // Rank-2 adapters A [in, 2] + B [2, out] on q, k, v, o (32→32, 32→16, 32→16, 32→32) and gate, up, down
    // (32→64, 32→64, 64→32): 2·(64 + 48 + 48 + 64 + 96 + 96 + 96) = 1024 per layer, 2 layers.
    let adapters = adapted.num_params() - full;
    println!("params: full {full}, adapters {adapters}, trainable {}", trainable(&adapted));
    assert_eq!(adapters, 2048);
    assert_eq!(trainable(&adapted), 2048, "only the adapters train with freeze_others and no `trainable`");

    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("lora");
    let cfg = config(
        &dir,
        &[
            "train.batch=8",
            "train.micro_batch=4",
            "train.epochs=2",
            "train.warmup=0",
            "train.lr=1e-2",
            "train.patience=0",
        ],
    );
    let set = samples(16, 0);
    let start = loss_of(&adapted, &set);
    let out = SftTrainer::new(cfg, adapted, data(set.clone(), set.clone()), device.clone())?.run()?;
    let end = loss_of(&out.model, &set);
    println!("LoRA loss {start:.4} → {end:.4}");
    assert!(end < start, "LoRA training did not lower the loss: {start} → {end}");

    // The best checkpoint reloads into a freshly adapted model with the same weights and loss.
    let best = out.summary.best_step.expect("a best step");
    let fresh = adapt(TinyLm::new(&device, 2), &lora)?;
    let loaded = checkpoint::load_model(&checkpoint::step_dir(&dir, best), fresh)?;
    assert_eq!(max_diff(&weights(&loaded), &weights(&out.model)), 0.0);
    assert!((loss_of(&loaded, &set) - end).abs() < 1e-9);

    let bad = LoraConfig { enabled: true, targets: vec!["(".into()], ..LoraConfig::default() };
    let err = adapt(TinyLm::new(&device, 1), &bad).unwrap_err();
    assert!(err.to_string().contains("model.lora.targets"), "{err}");
    Ok(())
}
