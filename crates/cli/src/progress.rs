//! The progress bar of a cluster scan: on a terminal only (indicatif draws nothing when stderr
//! is not one), so that pipes and CI logs stay quiet.

use indicatif::{ProgressBar, ProgressStyle};
use jackstop_cluster::{Progress, Resource};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Kinds listed out of those discovered, and objects so far.
pub struct ListProgress {
    bar: ProgressBar,
    objects: AtomicUsize,
}

impl ListProgress {
    pub fn new() -> ListProgress {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix} {pos}/{len} kinds, {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix("discovering");
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        ListProgress {
            bar,
            objects: AtomicUsize::new(0),
        }
    }

    /// Clears the bar before the report is written.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for ListProgress {
    fn discovered(&self, resources: &[Resource]) {
        self.bar.set_length(resources.len() as u64);
        self.bar.set_prefix("listing");
        self.bar.set_message("0 objects");
    }

    fn page(&self, _resource: &Resource, objects: usize) {
        let n = self.objects.fetch_add(objects, Ordering::Relaxed) + objects;
        self.bar.set_message(format!("{n} objects"));
    }

    fn listed(&self, _resource: &Resource) {
        self.bar.inc(1);
    }
}
