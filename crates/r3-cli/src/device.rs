//! The one place where the compute device is built: the backend is chosen by the cargo features compiled in
//! (`flex` by default; `wgpu`, `vulkan`, `cuda` on request) and, at run time, by `--device` (every command that
//! computes takes it: `flex`, `wgpu[:N]`, `vulkan[:N]`, `cuda[:N]`) or, when that is absent, by `BURN_DEVICE`.

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

/// A device named on the command line: a backend and, for GPUs, the index of the card (`cuda:1`; for `wgpu` and
/// `vulkan` the index among discrete GPUs). Without an index: the backend's default device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceSpec {
    /// The backend.
    pub backend: BackendName,
    /// The card, if named.
    pub index: Option<usize>,
}

impl std::str::FromStr for DeviceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, index) = match s.split_once(':') {
            Some((n, i)) => {
                let i = i.parse::<usize>().map_err(|_| {
                    format!("`{s}`: the part after `:` must be a device index such as `cuda:0` or `vulkan:1`")
                })?;
                (n, Some(i))
            }
            None => (s, None),
        };
        let backend = <BackendName as clap::ValueEnum>::from_str(name, true)
            .map_err(|_| format!("unknown device `{s}`: expected flex, wgpu[:N], vulkan[:N] or cuda[:N]"))?;
        if backend == BackendName::Flex && index.is_some() {
            return Err(format!("`{s}`: the flex CPU backend has one device; write `flex`"));
        }
        Ok(Self { backend, index })
    }
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = format!("{:?}", self.backend).to_lowercase();
        match self.index {
            Some(i) => write!(f, "{name}:{i}"),
            None => f.write_str(&name),
        }
    }
}

/// The environment variable that names the device when `--device` is absent (burn's name for it).
pub const DEVICE_ENV: &str = "BURN_DEVICE";

/// The device named by `BURN_DEVICE`, parsed and validated like `--device` (same syntax, same checks), or `None`
/// when the variable is unset or empty.
///
/// burn reads the variable too (in `Device::default()`), but it panics on a backend that is not compiled in and
/// knows no `:N` index; this function makes the variable an ordinary, checked setting instead.
pub fn from_env() -> anyhow::Result<Option<DeviceSpec>> {
    let Some(value) = std::env::var_os(DEVICE_ENV) else { return Ok(None) };
    let Some(value) = value.to_str() else {
        bail!("{DEVICE_ENV} is not valid UTF-8: set it to flex, wgpu[:N], vulkan[:N] or cuda[:N], or unset it");
    };
    if value.trim().is_empty() {
        return Ok(None);
    }
    let spec = value.trim().parse::<DeviceSpec>().map_err(|e| anyhow::anyhow!("{DEVICE_ENV}={value}: {e}"))?;
    check_compiled(spec).with_context(|| format!("{DEVICE_ENV}={value}"))?;
    Ok(Some(spec))
}

/// An error saying how to get `spec`'s backend when this binary lacks it.
fn check_compiled(spec: DeviceSpec) -> anyhow::Result<()> {
    let name = spec.backend;
    if !compiled().contains(&name) {
        bail!(
            "backend `{name:?}` is not compiled into this binary (compiled: {:?}): rebuild with `--features {}`",
            compiled(),
            format!("{name:?}").to_lowercase()
        );
    }
    Ok(())
}

/// Builds the device of `spec`; when none is named, the device of `BURN_DEVICE` ([`from_env`]), else burn's
/// default device (the first compiled backend, GPUs first).
pub fn select(spec: Option<DeviceSpec>) -> anyhow::Result<Device> {
    let spec = match spec {
        Some(spec) => Some(spec),
        None => from_env()?,
    };
    let Some(spec) = spec else {
        if compiled().is_empty() {
            bail!("this binary was built without a backend: rebuild with `--features flex` (or wgpu, vulkan, cuda)");
        }
        return Ok(Device::default());
    };
    check_compiled(spec)?;
    Ok(match spec.backend {
        #[cfg(feature = "flex")]
        BackendName::Flex => Device::flex(),
        #[cfg(feature = "wgpu")]
        BackendName::Wgpu => Device::wgpu(wgpu_kind(spec.index)),
        #[cfg(feature = "vulkan")]
        BackendName::Vulkan => Device::vulkan(wgpu_kind(spec.index)),
        #[cfg(feature = "cuda")]
        BackendName::Cuda => Device::cuda(spec.index.unwrap_or(0)),
        #[allow(unreachable_patterns)]
        other => bail!("backend `{other:?}` is not compiled into this binary"),
    })
}

/// The WGPU adapter of a card index (our `vulkan` feature includes `wgpu`): the N-th discrete GPU, or WGPU's
/// default choice when no index is given.
#[cfg(feature = "wgpu")]
fn wgpu_kind(index: Option<usize>) -> burn::tensor::DeviceKind {
    index.map_or(burn::tensor::DeviceKind::DefaultDevice, burn::tensor::DeviceKind::DiscreteGpu)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_specs_parse() {
        let p = |s: &str| s.parse::<DeviceSpec>();
        assert_eq!(p("flex"), Ok(DeviceSpec { backend: BackendName::Flex, index: None }));
        assert_eq!(p("cuda:1"), Ok(DeviceSpec { backend: BackendName::Cuda, index: Some(1) }));
        assert_eq!(p("Vulkan"), Ok(DeviceSpec { backend: BackendName::Vulkan, index: None }));
        assert_eq!(p("cuda:1").unwrap().to_string(), "cuda:1");
        assert!(p("flex:0").unwrap_err().contains("one device"));
        assert!(p("cuda:x").unwrap_err().contains("device index"));
        assert!(p("tpu").unwrap_err().contains("unknown device `tpu`"));
    }
}
