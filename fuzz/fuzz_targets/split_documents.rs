//! `documents::split` invariants: documents come in order, start on increasing lines, and
//! each one's text is a slice of the input that starts on the line it claims.
#![no_main]

use jackstop_manifests::documents::split;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let docs = split(text);
    let base = text.as_ptr() as usize;
    let mut prev_end = 0usize;
    let mut prev_line = 0u32;
    for d in &docs {
        let start = d.text.as_ptr() as usize - base;
        let end = start + d.text.len();
        assert!(end <= text.len(), "document outside the input");
        assert_eq!(&text[start..end], d.text, "document is not a slice of the input");
        assert!(start >= prev_end, "documents overlap or are out of order");
        assert!(d.first_line > prev_line, "first_line not increasing");
        // first_line is the 1-based line the slice starts on.
        let line = 1 + text[..start].matches('\n').count() as u32;
        assert_eq!(d.first_line, line, "first_line does not match the slice's offset");
        // A document starts at the beginning of a line.
        assert!(start == 0 || text.as_bytes()[start - 1] == b'\n');
        if let Some(t) = d.template {
            let tp = t.as_ptr() as usize;
            assert!(tp >= base + start && tp + t.len() <= base + end);
        }
        prev_end = end;
        prev_line = d.first_line;
    }
});
