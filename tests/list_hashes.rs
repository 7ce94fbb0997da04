//! `list --format` content-hash placeholders (md5 … xxh64) equal borg's, in text and JSON lines.

mod common;

use common::*;
use std::ffi::OsString;

const FORMAT: &str = "{path} {md5} {sha1} {sha224} {sha256} {sha384} {sha512} {sha3_224} \
                      {sha3_256} {sha3_384} {sha3_512} {blake2b} {blake2s} {xxh64}{NL}";

#[test]
fn hash_placeholders_match_borg() {
    for label in ["1.2", "1.4"] {
        let Some(borg) = borg(label) else { continue };
        let mut env = TestEnv::new();
        env.set("BORG_PASSPHRASE", "oxiborg-test");
        let repo = fixture_repo(&mut env, "repokey-blake2-lz4");
        let (archive, _) = expected_archives("repokey-blake2-lz4")[0].clone();
        let loc = repo_archive(&repo, &archive);
        for extra in [
            &["--format", FORMAT][..],
            &["--json-lines", "--format", "{sha256}{xxh64}{md5}"][..],
        ] {
            let mut args: Vec<OsString> = vec!["list".into()];
            args.extend(extra.iter().map(OsString::from));
            args.push(loc.clone());
            let theirs = env.borg_ok(&borg, &args);
            let ours = env.oxiborg(&args);
            ours.assert_ok();
            let mut diffs = Vec::new();
            if extra[0] == "--json-lines" {
                jsonl_diff(&theirs.stdout_str(), &ours.stdout_str(), &mut diffs);
            } else {
                text_diff(&theirs.stdout, &ours.stdout, &mut diffs);
            }
            assert_no_diffs(&format!("borg {label} {extra:?}"), &diffs);
            assert!(ours.stdout_str().len() > 1000, "the listing has content");
        }
    }
}
