//! Rows-written progress, for a CLI progress bar. Writers call [`Progress::tick`] per row; the
//! callback runs every `every` rows (and once at the end), so a bar costs nothing per row.

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    every: u64,
    rows: u64,
    callback: Box<dyn FnMut(u64) + Send>,
}

impl Progress {
    /// `callback(rows_written)` every `every` rows (at least 1).
    pub fn new(every: u64, callback: impl FnMut(u64) + Send + 'static) -> Progress {
        Progress {
            every: every.max(1),
            rows: 0,
            callback: Box::new(callback),
        }
    }

    #[inline]
    pub fn tick(&mut self) {
        self.rows += 1;
        if self.rows % self.every == 0 {
            (self.callback)(self.rows);
        }
    }

    /// Reports the final count.
    pub fn done(&mut self) {
        (self.callback)(self.rows);
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }
}

/// Ticks an optional progress hook (what the writers hold).
#[inline]
pub(crate) fn tick(p: &mut Option<Progress>) {
    if let Some(p) = p {
        p.tick();
    }
}

pub(crate) fn done(p: &mut Option<Progress>) {
    if let Some(p) = p {
        p.done();
    }
}

/// A stderr progress bar over `total` rows (a spinner when the total is unknown) and the hook
/// that drives it: give the hook to a writer's `set_progress`, call `finish` on the bar at the
/// end. indicatif hides the bar when stderr is not a terminal.
pub fn progress_bar(total: Option<u64>) -> (Progress, ProgressBar) {
    let bar = match total {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} rows {per_sec} eta {eta}")
                .expect("a valid template"),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {pos} rows {per_sec}")
                .expect("a valid template"),
        ),
    };
    let b = bar.clone();
    (Progress::new(1024, move |n| b.set_position(n)), bar)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn calls_back_every_n_rows_and_at_the_end() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let mut p = Progress::new(3, move |n| s.lock().unwrap().push(n));
        for _ in 0..7 {
            p.tick();
        }
        p.done();
        assert_eq!(*seen.lock().unwrap(), vec![3, 6, 7]);
        assert_eq!(p.rows(), 7);
    }
}
