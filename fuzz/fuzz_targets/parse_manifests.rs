//! Any byte string, read as (lossy) UTF-8, must parse into objects and error entries without
//! panicking, hanging or blowing up memory.
#![no_main]

use jackstop_manifests::reader::{parse_text, KindFilter, ManifestSet, ReadOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut set = ManifestSet::default();
    parse_text(&text, "fuzz.yaml", &ReadOptions::default(), &mut set);
    // Every error entry names the input and, where it has a line, a line of it.
    // Lines as YAML counts them: `\r\n`, a lone `\r` and `\n` each end one.
    let breaks = text.replace("\r\n", "\n").chars().filter(|&c| c == '\n' || c == '\r').count();
    let lines = breaks.max(1) as u32 + 1;
    for e in &set.errors {
        assert_eq!(e.path, "fuzz.yaml");
        if let Some(l) = e.line {
            assert!(l >= 1 && l <= lines, "error line {l} outside 1..={lines}: {e:?}");
        }
    }
    // Differential: documents of kinds nobody keeps are skimmed (events only, no tree); the
    // counts and the errors must be those of the full reading.
    let only = ReadOptions {
        kinds: KindFilter::Kinds(["Service".to_string()].into()),
        ..ReadOptions::default()
    };
    let mut skimmed = ManifestSet::default();
    parse_text(&text, "fuzz.yaml", &only, &mut skimmed);
    assert_eq!(skimmed.stats, set.stats);
    assert_eq!(skimmed.errors, set.errors);
});
