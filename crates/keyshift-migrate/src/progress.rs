//! Progress: a bar on a terminal (indicatif), plain lines on stderr otherwise (at most
//! one a second), nothing when quiet.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A bar when stderr is a terminal, lines otherwise.
    Auto,
    /// Nothing (library callers, tests).
    Quiet,
}

/// One step's progress.
#[derive(Debug)]
pub struct Progress {
    label: String,
    total: u64,
    done: u64,
    bar: Option<ProgressBar>,
    lines: bool,
    last: Instant,
    start: Instant,
}

impl Progress {
    /// Progress of `label` over about `total` rows.
    pub fn new(mode: Mode, label: &str, total: u64) -> Self {
        let (bar, lines) = match mode {
            Mode::Quiet => (None, false),
            Mode::Auto if std::io::stderr().is_terminal() => {
                let bar = ProgressBar::new(total);
                if let Ok(style) =
                    ProgressStyle::with_template("{msg:>16} [{bar:40}] {pos}/{len} rows {per_sec} eta {eta}")
                {
                    bar.set_style(style.progress_chars("=> "));
                }
                bar.set_message(label.to_owned());
                (Some(bar), false)
            }
            Mode::Auto => (None, true),
        };
        Progress {
            label: label.to_owned(),
            total,
            done: 0,
            bar,
            lines,
            last: Instant::now(),
            start: Instant::now(),
        }
    }

    /// `n` more rows seen.
    pub fn inc(&mut self, n: u64) {
        self.done += n;
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
        if self.lines && self.last.elapsed() >= Duration::from_secs(1) {
            self.last = Instant::now();
            self.line();
        }
    }

    fn line(&self) {
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        eprintln!(
            "{}: {}/{} rows, {:.0} rows/s, {:.1} s",
            self.label,
            self.done,
            self.total,
            self.done as f64 / secs,
            secs
        );
    }

    /// The step is over.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
        if self.lines {
            self.line();
        }
    }
}
