//! The on-disk hash index and the repository config parser.
#![no_main]
use libfuzzer_sys::fuzz_target;
use oxiborg::store::hashindex::HashIndex;
use oxiborg::store::local::RepoConfig;

fuzz_target!(|data: &[u8]| {
    if let Ok(idx) = HashIndex::from_bytes(data.to_vec()) {
        let _ = idx.get(&[0u8; 32]);
        let _ = idx.iter().count();
    }
    let _ = RepoConfig::parse(&String::from_utf8_lossy(data));
});
