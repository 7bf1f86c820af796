//! The one place where the compute device is built: the backend is chosen by the cargo features compiled in
//! (`flex` by default; `wgpu`, `vulkan`, `cuda` on request) and, at run time, by `--backend` or `BURN_DEVICE`.

use anyhow::{Context, bail};
use burn::tensor::{Device, Tensor, TensorData};

/// A backend that can be asked for on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendName {
    /// The pure-Rust CPU backend (SIMD + threads): development, CI, CPU runs.
    Flex,
    /// WGPU on the best adapter the machine offers.
    Wgpu,
    /// WGPU pinned to Vulkan.
    Vulkan,
    /// CUDA (NVIDIA).
    Cuda,
}

/// The backends compiled into this binary.
pub fn compiled() -> Vec<BackendName> {
    let mut v = Vec::new();
    if cfg!(feature = "flex") {
        v.push(BackendName::Flex);
    }
    if cfg!(feature = "wgpu") {
        v.push(BackendName::Wgpu);
    }
    if cfg!(feature = "vulkan") {
        v.push(BackendName::Vulkan);
    }
    if cfg!(feature = "cuda") {
        v.push(BackendName::Cuda);
    }
    v
}

/// Builds the device for `name`, or burn's default device (first compiled backend, `BURN_DEVICE` overrides).
pub fn select(name: Option<BackendName>) -> anyhow::Result<Device> {
    let Some(name) = name else {
        if compiled().is_empty() {
            bail!("this binary was built without a backend: rebuild with `--features flex` (or wgpu, vulkan, cuda)");
        }
        return Ok(Device::default());
    };
    if !compiled().contains(&name) {
        bail!(
            "backend `{name:?}` is not compiled into this binary (compiled: {:?}): rebuild with `--features {}`",
            compiled(),
            format!("{name:?}").to_lowercase()
        );
    }
    Ok(match name {
        #[cfg(feature = "flex")]
        BackendName::Flex => Device::flex(),
        #[cfg(feature = "wgpu")]
        BackendName::Wgpu => Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
        #[cfg(feature = "vulkan")]
        BackendName::Vulkan => Device::vulkan(burn::tensor::DeviceKind::DefaultDevice),
        #[cfg(feature = "cuda")]
        BackendName::Cuda => Device::cuda(0usize),
        #[allow(unreachable_patterns)]
        other => bail!("backend `{other:?}` is not compiled into this binary"),
    })
}

/// Multiplies two small matrices on `device` and compares with the product computed on the host, so that a
/// broken driver or backend is caught before a long run starts. Returns the largest absolute difference.
pub fn self_check(device: &Device) -> anyhow::Result<f32> {
    let (m, k, n) = (17usize, 33usize, 9usize);
    let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) / 8.0).collect();
    let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32 - 5.0) / 4.0).collect();
    let ta = Tensor::<2>::from_data(TensorData::new(a.clone(), [m, k]), device);
    let tb = Tensor::<2>::from_data(TensorData::new(b.clone(), [k, n]), device);
    let got: Vec<f32> =
        ta.matmul(tb).into_data().try_to_vec::<f32>().map_err(|e| anyhow::anyhow!("{e:?}")).context("read back")?;
    let mut max = 0f32;
    for i in 0..m {
        for j in 0..n {
            let want: f32 = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            max = max.max((want - got[i * n + j]).abs());
        }
    }
    if max > 1e-3 {
        bail!(
            "the device computed a wrong matrix product (max difference {max}): check the driver or pick another backend"
        );
    }
    Ok(max)
}
