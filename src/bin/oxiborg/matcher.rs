//! The PATH arguments and exclusion options as one matcher, in command-line order.

use crate::args::PatternArgs;
use oxiborg::error::{Error, Result};
use oxiborg::patterns::{Matcher, Style};
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Builds the matcher from exclusion options in command-line order, then the PATH arguments.
/// Patterns, paths and pattern files are bytes, as archive paths are (a PATH that is not
/// UTF-8 selects the same bytes).
pub(crate) fn build_matcher(
    paths: &[OsString],
    p: &PatternArgs,
    sub: Option<&clap::ArgMatches>,
) -> Result<Matcher> {
    enum Arg<'a> {
        Exclude(&'a OsString),
        ExcludeFrom(&'a PathBuf),
        Pattern(&'a OsString),
        PatternsFrom(&'a PathBuf),
    }
    // (command-line index, option)
    let mut ordered: Vec<(usize, Arg<'_>)> = Vec::new();
    let index = |id: &str| -> Vec<usize> {
        sub.and_then(|m| m.indices_of(id))
            .map(|i| i.collect())
            .unwrap_or_default()
    };
    let at = |idx: &[usize], n: usize| idx.get(n).copied().unwrap_or(usize::MAX);
    let idx = index("exclude");
    ordered.extend(
        p.exclude
            .iter()
            .enumerate()
            .map(|(n, v)| (at(&idx, n), Arg::Exclude(v))),
    );
    let idx = index("exclude_from");
    ordered.extend(
        p.exclude_from
            .iter()
            .enumerate()
            .map(|(n, v)| (at(&idx, n), Arg::ExcludeFrom(v))),
    );
    let idx = index("pattern");
    ordered.extend(
        p.pattern
            .iter()
            .enumerate()
            .map(|(n, v)| (at(&idx, n), Arg::Pattern(v))),
    );
    let idx = index("patterns_from");
    ordered.extend(
        p.patterns_from
            .iter()
            .enumerate()
            .map(|(n, v)| (at(&idx, n), Arg::PatternsFrom(v))),
    );
    ordered.sort_by_key(|(i, _)| *i);
    let mut m = Matcher::new();
    let read = |f: &PathBuf| std::fs::read(f).map_err(|e| Error::io(f, e));
    for (_, arg) in ordered {
        match arg {
            Arg::Exclude(v) => m.add_exclude(v.as_bytes())?,
            Arg::ExcludeFrom(f) => m.add_exclude_lines(read(f)?)?,
            Arg::Pattern(v) => m.add_pattern_line(v.as_bytes(), Style::Shell)?,
            Arg::PatternsFrom(f) => m.add_pattern_lines(read(f)?)?,
        }
    }
    let paths: Vec<&[u8]> = paths.iter().map(|p| p.as_bytes()).collect();
    m.add_paths(&paths)?;
    Ok(m)
}
