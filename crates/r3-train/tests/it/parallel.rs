//! Data parallelism (`r3_train::parallel`): a step of several peers gives the parameters of a one-device step
//! over the whole global batch.
//!
//! burn's own collective cannot run here: burn 0.22.1 implements `all_reduce` for CUDA only, and the flex CPU
//! backend declares no collective support at all (`burn-flex-0.22.1/src/ops/transaction.rs:10-11`; the module
//! docs of `r3_train::parallel` give the details). So these tests run the host all-reduce that flex, wgpu,
//! vulkan and multi-machine runs use, with several peers on the one flex device: one thread per peer, each with
//! its own replica (`Module::fork` gives it its own autodiff leaves) and its own optimizer. The two-process test
//! runs two trainers in two threads that meet over TCP on localhost, as two machines would.

use burn::tensor::Device;
use r3_train::parallel::{Launch, ParallelConfig, Reduction};
use r3_train::run::{MetricRecord, read_metrics};
use r3_train::{Error, SftTrainer, epoch_order};

use crate::{POISON, TinyLm, ad_device, config, data, max_diff, samples, weights};

/// The settings of the equivalence runs: one epoch of two global batches of 8 samples in micro-batches of 2
/// (4 micro-batches per step), no warm-up, clipping on.
const SETTINGS: [&str; 5] =
    ["train.batch=8", "train.micro_batch=2", "train.epochs=1", "train.warmup=0", "train.lr=1e-3"];

/// The weights after a run and the (loss, grad norm) of every step.
type Run = (Vec<Vec<f32>>, Vec<(f64, f64)>);

/// Runs the equivalence setting on `peers` flex peers (`None`: the plain one-device trainer); returns the
/// weights and the (loss, grad norm) of every step.
fn run(dir: &std::path::Path, peers: Option<usize>) -> anyhow::Result<Run> {
    let device = ad_device();
    let trainer =
        SftTrainer::new(config(dir, &SETTINGS), TinyLm::new(&device, 1), data(samples(16, 0), samples(4, 0)), device)?;
    let trainer = match peers {
        None => trainer,
        Some(n) => trainer.with_parallel(&ParallelConfig::local(vec![Device::flex(); n]))?,
    };
    let out = trainer.run()?;
    assert_eq!(out.summary.steps, 2);
    let steps = read_metrics(dir)?
        .into_iter()
        .filter_map(|r| match r {
            MetricRecord::Step { loss, grad_norm, .. } => Some((loss, grad_norm)),
            _ => None,
        })
        .collect();
    Ok((weights(&out.model), steps))
}

fn compare(name: &str, one: &(Vec<Vec<f32>>, Vec<(f64, f64)>), many: &(Vec<Vec<f32>>, Vec<(f64, f64)>)) {
    let before = weights(&TinyLm::new(&ad_device(), 1));
    let moved = max_diff(&before, &one.0);
    let diff = max_diff(&one.0, &many.0);
    println!(
        "{name}: update max |Δw| = {moved:e}; one device vs peers max diff = {diff:e}; steps {:?} vs {:?}",
        one.1, many.1
    );
    assert!(moved > 1e-4, "the steps did not move the weights ({moved:e})");
    assert!(diff < 1e-5, "{name}: data-parallel weights differ from one device by {diff:e}");
    assert_eq!(one.1.len(), many.1.len());
    for ((l1, n1), (l2, n2)) in one.1.iter().zip(&many.1) {
        assert!((l1 - l2).abs() < 1e-6, "{name}: losses differ: {l1} vs {l2}");
        // The pre-clip norm catches a wrong global scale (a mean of per-peer means instead of Σ NLL / tokens).
        assert!((n1 - n2).abs() < 1e-5 * n1, "{name}: gradient norms differ: {n1} vs {n2}");
    }
}

#[test]
fn two_and_three_peers_give_the_one_device_update() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let one = run(&tmp.path().join("one"), None)?;
    let two = run(&tmp.path().join("two"), Some(2))?;
    compare("2 peers", &one, &two);
    // 4 micro-batches over 3 peers: an uneven split (2, 1, 1).
    let three = run(&tmp.path().join("three"), Some(3))?;
    compare("3 peers", &one, &three);
    Ok(())
}

/// Two processes of one flex peer each, meeting over TCP on localhost (`R3_RANK`, `R3_WORLD_SIZE`,
/// `R3_COORDINATOR` in a real launch): each writes its own run folder and both end with the one-device weights,
/// although process 1 starts from another random model (process 0's weights are broadcast first).
#[test]
fn two_processes_over_tcp_give_the_one_device_update() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let one = run(&tmp.path().join("one"), None)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let handles: Vec<_> = (0..2usize)
        .map(|rank| {
            let dir = tmp.path().join(format!("rank-{rank}"));
            std::thread::spawn(move || -> anyhow::Result<Run> {
                let device = ad_device();
                let parallel = ParallelConfig {
                    devices: vec![Device::flex()],
                    reduction: Reduction::Host,
                    launch: Launch { rank, world_size: 2, coordinator: Some(format!("127.0.0.1:{port}")) },
                };
                let trainer = SftTrainer::new(
                    config(&dir, &SETTINGS),
                    // Process 1 builds a different model: `with_parallel` replaces its trainable weights by
                    // process 0's, as a fresh LatentRATT or LoRA initialisation differs between processes.
                    TinyLm::new(&device, 1 + rank as u64),
                    data(samples(16, 0), samples(4, 0)),
                    device,
                )?
                .with_parallel(&parallel)?;
                let out = trainer.run()?;
                let steps = read_metrics(&dir)?
                    .into_iter()
                    .filter_map(|r| match r {
                        MetricRecord::Step { loss, grad_norm, .. } => Some((loss, grad_norm)),
                        _ => None,
                    })
                    .collect();
                Ok((weights(&out.model), steps))
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().expect("process thread")).collect::<Result<_, _>>()?;
    compare("2 processes", &one, &results[0]);
    compare("2 processes (rank 1)", &one, &results[1]);
    assert!(max_diff(&results[0].0, &results[1].0) == 0.0, "the two processes' replicas differ");
    Ok(())
}

/// A NaN in one peer's share stops every peer at that step (nobody waits forever at the all-reduce), with the
/// one-device error.
#[test]
fn a_nan_on_one_peer_stops_all_peers() -> anyhow::Result<()> {
    let device = ad_device();
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("nan");
    let mut train = samples(16, 0);
    // The first sample of step 3's global batch: micro-batch 0, which is peer 0's; peer 1's share is finite.
    let order = epoch_order(train.len(), 0, 0);
    train[order[8]].target_ids.insert(0, POISON);
    let cfg = config(&dir, &["train.batch=4", "train.micro_batch=2", "train.checkpoint_every=1", "train.warmup=0"]);
    let trainer = SftTrainer::new(cfg, TinyLm::new(&device, 1), data(train, samples(4, 1)), device)?
        .with_parallel(&ParallelConfig::local(vec![Device::flex(), Device::flex()]))?;
    let err = trainer.run().unwrap_err();
    let msg = err.to_string();
    println!("{msg}");
    assert!(matches!(err, Error::NonFinite { step: 3, what: "loss", .. }), "{msg}");
    Ok(())
}
