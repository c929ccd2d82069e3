//! Indicator hits located in a runnable: in its image, in each of its texts, and in what those
//! texts decode to (base64, hex, escapes), each mapped back to the field it came from.

use super::decode::{decode_layers, Limits};
use crate::workloads::{RunText, Runnable};
use jackstop_catalogue::indicators::{Hit, IndicatorSet};

/// One indicator hit with where it was found.
#[derive(Debug, Clone)]
pub struct Located {
    pub hit: Hit,
    /// The field path inside the resource (`spec.template.spec.containers[0].args[1]`).
    pub field: String,
    /// What the text was (`command and args`, `env POOL`, `image`).
    pub label: String,
    /// When found in a decoded payload: how it was decoded and the decoded text (shortened).
    pub decoded: Option<String>,
}

/// Longest excerpt of a decoded payload shown as evidence.
const DECODED_EXCERPT: usize = 160;

/// Every hit of a runnable, and the notes of decoding that hit a limit.
pub fn collect(
    r: &Runnable<'_>,
    set: &IndicatorSet,
    limits: &Limits,
) -> (Vec<Located>, Vec<String>) {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    if let Some(image) = &r.image {
        for hit in set.scan_image(image) {
            out.push(Located {
                hit,
                field: format!("{}.image", r.field),
                label: "image".into(),
                decoded: None,
            });
        }
    }
    for t in &r.texts {
        scan_text(t, set, limits, &mut out, &mut notes);
    }
    (out, notes)
}

/// Hits of one text and of its decoded layers.
pub fn scan_text(
    t: &RunText,
    set: &IndicatorSet,
    limits: &Limits,
    out: &mut Vec<Located>,
    notes: &mut Vec<String>,
) {
    for hit in set.scan_text(&t.text) {
        out.push(Located {
            field: t.field_at(hit.start).to_string(),
            label: t.label.clone(),
            decoded: None,
            hit,
        });
    }
    let decoded = decode_layers(&t.text, limits);
    for n in decoded.notes {
        notes.push(format!("{} ({}): {n}", t.field, t.label));
    }
    for (i, layer) in decoded.layers.iter().enumerate() {
        let hits = set.scan_text(&layer.text);
        if hits.is_empty() {
            continue;
        }
        // The field of the outermost encoded run this layer came from.
        let mut root = i;
        let mut chain = vec![layer.via];
        while let Some(p) = decoded.layers[root].parent {
            root = p;
            chain.push(decoded.layers[p].via);
        }
        chain.reverse();
        let field = t.field_at(decoded.layers[root].range.start).to_string();
        let how = format!(
            "decoded {} (depth {}): `{}`",
            chain.join(" then "),
            layer.depth,
            excerpt(&layer.text, DECODED_EXCERPT)
        );
        for hit in hits {
            out.push(Located {
                hit,
                field: field.clone(),
                label: t.label.clone(),
                decoded: Some(how.clone()),
            });
        }
    }
}

/// A single-line excerpt of at most `max` characters: control characters and runs of
/// whitespace become single spaces, leading and trailing ones go, and a longer text is cut
/// there with `...`. One pass, one string (evidence lines are built for every hit of a
/// denied review).
pub fn excerpt(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max * 4) + 3);
    let mut chars = 0;
    let mut gap = false;
    for c in text.chars() {
        if c.is_control() || c.is_whitespace() {
            gap = chars > 0;
            continue;
        }
        // The space a gap became, then the character, each within `max`.
        for x in gap.then_some(' ').into_iter().chain([c]) {
            if chars == max {
                out.push_str("...");
                return out;
            }
            out.push(x);
            chars += 1;
        }
        gap = false;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::excerpt;

    /// The excerpt as it was first written: flatten, collapse, count, cut.
    fn by_steps(text: &str, max: usize) -> String {
        let flat: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let flat = flat.split_whitespace().collect::<Vec<_>>().join(" ");
        if flat.chars().count() <= max {
            flat
        } else {
            let cut: String = flat.chars().take(max).collect();
            format!("{cut}...")
        }
    }

    #[test]
    fn one_pass_says_what_the_steps_say() {
        let texts = [
            "",
            " ",
            "xmrig",
            "  xmrig  -o  pool:3333 ",
            "a\tb\nc\r\n d\u{0}e\u{85}f\u{a0}g\u{3000}h",
            "ééé ééé",
            "abc def",
            "abc  ",
            "abcd",
        ];
        for t in texts {
            for max in 0..12 {
                assert_eq!(excerpt(t, max), by_steps(t, max), "{t:?} {max}");
            }
        }
        let long = "stratum+tcp://pool.example.invalid:3333 ".repeat(20);
        for max in [0, 1, 39, 40, 41, 120, 160, 2000] {
            assert_eq!(excerpt(&long, max), by_steps(&long, max), "{max}");
        }
    }
}
