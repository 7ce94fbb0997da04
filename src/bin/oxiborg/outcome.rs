//! The outcome of a restore: borg's exit code for it, the closing lines (what an interrupted one
//! had done, what a failed one could not restore and why), and the free-space warning before
//! it starts.

use oxiborg::extract::{Shortfall, Summary};
use std::path::Path;

/// borg's exit code for a restore's outcome (legacy: 0, 1 or 2): 2 when files were lost to
/// damaged data or failing system calls, else 1 with warnings or items refused, else 0.
pub(super) fn exit_code(s: &Summary) -> i32 {
    if s.failed > 0 {
        2
    } else if s.warnings > 0 || s.refused > 0 {
        1
    } else {
        0
    }
}

/// Files restored so far (counted from the restore's events).
#[derive(Debug, Default)]
pub(super) struct Done {
    files: u64,
    bytes: u64,
}

impl Done {
    /// A file restored (or kept, with `--continue`).
    pub(super) fn add(&mut self, bytes: u64) {
        self.files += 1;
        self.bytes = self.bytes.saturating_add(bytes);
    }

    /// What an interrupted restore had done, and what to do next.
    pub(super) fn restored(&self, dry_run: bool, stdout: bool) -> Option<String> {
        let what = format!("{} files ({})", self.files, mb(self.bytes));
        Some(if dry_run {
            format!("{what} verified; nothing was written")
        } else if stdout {
            format!("{what} written to stdout")
        } else {
            format!("{what} restored; run the same command with --continue to resume")
        })
    }
}

/// Bytes in decimal units as borg shows them (kB, MB, GB), one decimal.
fn mb(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.1} kB", b / 1e3)
    }
}

/// The warning when the selection will not fit the destination.
pub(super) fn shortfall_line(s: &Shortfall, dest: &Path) -> String {
    let free = match s.free_inodes {
        Some(f) => format!("{} and {f} inodes free", mb(s.free_bytes)),
        None => format!("{} free", mb(s.free_bytes)),
    };
    format!(
        "The selection will not fit: it needs about {} and {} inodes, {} has {free}. Files \
         that find no room will not be restored.",
        mb(s.need_bytes),
        s.need_inodes,
        dest.display(),
    )
}

/// The note that temporaries of an earlier, interrupted run were removed.
pub(super) fn stale_line(files: u64, dest: &Path) -> String {
    format!(
        "Removed {files} temporary files that an interrupted oxiborg run left in {} \
         (--continue keeps the files it completed).",
        dest.display()
    )
}

/// The closing line of a restore that left items out: how many, why, and how much space they
/// need when space is what they lacked. `None` when everything was restored.
pub(super) fn failure_line(s: &Summary, dry_run: bool) -> Option<String> {
    if s.not_restored == 0 {
        return None;
    }
    let mut causes: Vec<(&String, &u64)> = s.causes.iter().collect();
    causes.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let why = if causes.len() == 1 {
        causes[0].0.clone()
    } else {
        causes
            .iter()
            .map(|(c, n)| format!("{c} ({n})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let needed = if s.no_space_bytes > 0 {
        format!("; {} needed", mb(s.no_space_bytes))
    } else {
        String::new()
    };
    Some(format!(
        "{} of {} files not {}: {why}{needed}",
        s.not_restored,
        s.items,
        if dry_run { "verified" } else { "restored" }
    ))
}
