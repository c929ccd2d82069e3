//! Any text through the decoder and the indicator automata: no panic, hit ranges inside the
//! scanned text, decoded layers within the budget.
#![no_main]

use jackstop_analysers::miners::decode::{decode_layers, Limits};
use jackstop_catalogue::Catalogue;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let set = &Catalogue::builtin().indicators;
    for h in set.scan_text(&text) {
        assert!(h.start <= h.end && h.end <= text.len(), "{h:?}");
    }
    let _ = set.scan_image(&text);
    let limits = Limits::default();
    let decoded = decode_layers(&text, &limits);
    let total: usize = decoded.layers.iter().map(|l| l.text.len()).sum();
    assert!(total <= limits.max_total_bytes + limits.max_layer_bytes);
    for (i, l) in decoded.layers.iter().enumerate() {
        assert!(l.depth >= 1 && l.depth <= limits.max_depth);
        if let Some(p) = l.parent {
            assert!(p < i);
        }
        for h in set.scan_text(&l.text) {
            assert!(h.end <= l.text.len());
        }
    }
});
