//! Repository location parsing (every URL form, `::archive`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(loc) = oxiborg::Location::parse(s) {
            let _ = loc.canonical();
        }
        let _ = oxiborg::Location::parse_with_default(Some(s), Some("/repo"));
    }
});
