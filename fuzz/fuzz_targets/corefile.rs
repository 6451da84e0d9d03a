//! The Corefile parser on arbitrary text: errors, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // An operator may import any file; the fuzzer must not make it read
    // kernel files that block (/proc/kmsg) or never end.
    if ["/proc", "/sys", "/dev"]
        .iter()
        .any(|tree| text.contains(tree))
    {
        return;
    }
    // Imports resolve against a directory that does not exist.
    let _ = ringdns::config::parse_str(text, Path::new("/nonexistent-ringdns-fuzz/Corefile"));
});
