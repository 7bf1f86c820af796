//! The progress bars of the binary (libraries report progress through callbacks; only `r3-cli` draws).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A byte bar on stderr with throughput and ETA (hidden when stderr is not a terminal).
pub fn byte_bar(prefix: &str, total: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style =
        ProgressStyle::with_template("{prefix:>9} [{bar:40}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(prefix.to_string());
    bar
}

/// A step bar on stderr for a training run: `template` is an indicatif template (with `{prefix}`, `{bar}`,
/// `{pos}`, `{len}`, `{msg}`, `{eta}`), the bar is drawn with `=> ` and ticks twice a second.
pub fn step_bar(template: &str, prefix: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> "),
    );
    bar.set_prefix(prefix.to_string());
    bar.enable_steady_tick(Duration::from_millis(500));
    bar
}

/// Points a [`step_bar`] at a run that starts (or resumes) at `start_step` of `total_steps`, with a fresh ETA.
pub fn start_steps(bar: &ProgressBar, start_step: u64, total_steps: u64) {
    bar.set_length(total_steps);
    bar.set_position(start_step);
    bar.reset_eta();
}

/// A spinner on stderr with the elapsed time, for work of unknown length.
pub fn spinner(prefix: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{prefix:>9} {spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_prefix(prefix.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}
