//! glibc's allocator settings for tensor work.
//!
//! burn's CPU backend allocates a fresh buffer for nearly every tensor op, and glibc serves buffers above its
//! (dynamic) mmap threshold with `mmap`, so each of them is new memory from the kernel: page faults and zeroing on
//! first touch, `munmap` on free. With `mmap_max=0` and a trim threshold that is never reached, freed buffers stay
//! in the heap and the next tensor reuses their pages. Measured on the 2-core CPU of docs/performance.md: half the
//! page faults of `latentr3 bench prefill` (317 k → 169 k, most of the rest being the weights' first load) and a
//! 4 % shorter prefill, with the same peak memory in `bench sft`. `arena_max=1` keeps every thread on the main
//! heap: without it, the model loader's threads each kept an arena of freed temporaries that is never trimmed
//! (Qwen2.5-Coder-0.5B loaded: 2,586,268 KB resident against 2,539,556 KB with glibc's defaults; with it,
//! 2,528,032 KB), and the compute does not slow down (tensor buffers are allocated by the thread running the
//! graph).
//!
//! The settings are glibc tunables, read only at process start: [`tune`] therefore re-executes the binary once
//! with `GLIBC_TUNABLES` extended (safe code; the workspace forbids `unsafe`, so `mallopt` is out). The user's own
//! `glibc.malloc.*` tunables win, and `LATENTR3_MALLOC=default` keeps glibc's defaults.

/// The tunables added to `GLIBC_TUNABLES`.
pub const TUNABLES: &str =
    "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=18446744073709551615:glibc.malloc.arena_max=1";

/// The variable that marks the re-executed process (and, set to `default` by the user, turns the tuning off).
pub const MARKER: &str = "LATENTR3_MALLOC";

/// What [`tune`] does for a given environment: `Some(value of GLIBC_TUNABLES)` to re-execute with, or `None`.
pub fn tunables_for(marker: Option<&str>, current: Option<&str>) -> Option<String> {
    if marker.is_some() {
        return None;
    }
    match current.filter(|c| !c.is_empty()) {
        Some(c) if c.contains("glibc.malloc.") => None,
        Some(c) => Some(format!("{c}:{TUNABLES}")),
        None => Some(TUNABLES.to_string()),
    }
}

/// Re-executes the current binary with [`TUNABLES`] unless the environment says not to; returns only when it did
/// not re-execute (other platforms, opted out, already tuned, or `exec` failed, which is logged).
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        let marker = std::env::var(MARKER).ok();
        let current = std::env::var("GLIBC_TUNABLES").ok();
        let Some(value) = tunables_for(marker.as_deref(), current.as_deref()) else { return };
        let Ok(exe) = std::env::current_exe() else { return };
        let mut args = std::env::args_os();
        let mut cmd = std::process::Command::new(&exe);
        if let Some(arg0) = args.next() {
            cmd.arg0(arg0);
        }
        let err = cmd.args(args).env("GLIBC_TUNABLES", value).env(MARKER, "tuned").exec();
        // Only reached when exec failed: go on with glibc's defaults.
        eprintln!("latentr3: could not re-execute {} with tuned allocator settings ({err}); going on", exe.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_users_settings_win_and_the_marker_stops_a_second_exec() {
        assert_eq!(tunables_for(None, None).as_deref(), Some(TUNABLES));
        assert_eq!(tunables_for(None, Some("")).as_deref(), Some(TUNABLES));
        assert_eq!(
            tunables_for(None, Some("glibc.cpu.hwcaps=-AVX512F")),
            Some(format!("glibc.cpu.hwcaps=-AVX512F:{TUNABLES}"))
        );
        assert_eq!(tunables_for(None, Some("glibc.malloc.arena_max=2")), None);
        assert_eq!(tunables_for(Some("tuned"), None), None);
        assert_eq!(tunables_for(Some("default"), None), None);
    }
}
