//! Regular expressions that mean the same in the API server and here.
//!
//! Kubernetes evaluates CEL's `matches()` with Go's `regexp` (RE2 syntax); the tests evaluate it
//! with Rust's `regex`; the webhook's catalogue patterns are written for Rust's `regex`. The
//! patterns exported are kept to the part of the syntax where the three agree: explicit ASCII
//! classes instead of `\s` (Go: `[\t\n\f\r ]`, Rust: Unicode white space), no `\b`, `\w`, `\d`
//! or `(?-u:...)`, and no repetition count over 1000 (Go refuses them).

use base64::Engine as _;

/// What Go's `\s` means; used for the catalogue's `\s` so that Go and Rust agree.
const SPACE: &str = r"\t\n\f\r ";

/// Why a catalogue pattern cannot be exported as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untranslatable(pub String);

/// Escapes a literal for a regex (only the characters both engines treat as special).
pub fn escape(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len() + 4);
    for c in literal.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An alternation of escaped literals (longest first, so that the longest literal is reported).
pub fn alternation<S: AsRef<str>>(literals: &[S]) -> String {
    let mut l: Vec<&str> = literals.iter().map(AsRef::as_ref).collect();
    l.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    l.dedup();
    l.iter().map(|s| escape(s)).collect::<Vec<_>>().join("|")
}

/// A catalogue pattern (Rust `regex` syntax) rewritten into the common subset, or why not.
pub fn translate(pattern: &str) -> Result<String, Untranslatable> {
    let mut out = String::with_capacity(pattern.len() + 32);
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut in_class = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let Some(&n) = chars.get(i + 1) else {
                    return Err(Untranslatable("a trailing backslash".into()));
                };
                match n {
                    's' if in_class => out.push_str(SPACE),
                    's' => {
                        out.push('[');
                        out.push_str(SPACE);
                        out.push(']');
                    }
                    'S' if !in_class => {
                        out.push_str("[^");
                        out.push_str(SPACE);
                        out.push(']');
                    }
                    'S' | 'b' | 'B' | 'w' | 'W' | 'd' | 'D' | 'p' | 'P' | 'A' | 'z' => {
                        return Err(Untranslatable(format!(
                            "`\\{n}` differs between Go's RE2 and Rust's regex"
                        )))
                    }
                    _ => {
                        out.push('\\');
                        out.push(n);
                    }
                }
                i += 2;
                continue;
            }
            '[' if !in_class => {
                in_class = true;
                out.push(c);
                // `[]...]` and `[^]...]`: a leading `]` is a member.
                if chars.get(i + 1) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i + 1) == Some(&']') {
                    out.push(']');
                    i += 1;
                }
            }
            '[' if in_class && chars.get(i + 1) == Some(&':') => {
                return Err(Untranslatable("POSIX classes".into()));
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            '(' if !in_class && chars.get(i + 1) == Some(&'?') => {
                // Flags: only i, m, s (both engines); named groups are fine.
                let rest: String = chars[i + 2..].iter().take(8).collect();
                if rest.starts_with("-u") || rest.starts_with('u') || rest.starts_with('x') {
                    return Err(Untranslatable("the `u`/`x` flags are Rust's only".into()));
                }
                out.push(c);
            }
            '{' if !in_class => {
                let close = chars[i..].iter().position(|&x| x == '}');
                if let Some(close) = close {
                    let inner: String = chars[i + 1..i + close].iter().collect();
                    for n in inner.split(',') {
                        if n.parse::<u32>().is_ok_and(|n| n > 1000) {
                            return Err(Untranslatable(format!(
                                "the repetition {{{inner}}} is over RE2's limit of 1000"
                            )));
                        }
                    }
                }
                out.push(c);
            }
            _ => out.push(c),
        }
        i += 1;
    }
    Ok(out)
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// A class of base64 characters.
fn class(values: impl Iterator<Item = u8>) -> String {
    let mut s = String::from("[");
    for v in values {
        s.push(B64[v as usize] as char);
    }
    s.push(']');
    s
}

/// A regex that finds `bytes` base64-encoded (standard alphabet) wherever they sit in a longer
/// plain text: one branch per alignment. The characters that only these bytes decide are
/// literal; the two characters they share with the unknown bytes around them are classes of
/// every value consistent with these bytes, so that a match always decodes to exactly `bytes`.
/// Fewer than 8 bytes: too short to be told from chance in a base64 blob, `None`.
pub fn base64_regex(bytes: &[u8]) -> Option<String> {
    if bytes.len() < 8 {
        return None;
    }
    let n = bytes.len();
    let mut branches = Vec::new();
    for offset in 0..3usize {
        let mut buf = vec![0u8; offset];
        buf.extend_from_slice(bytes);
        let enc = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&buf);
        let skip = (offset * 8).div_ceil(6);
        let end = (offset + n) * 8 / 6;
        let mut b = String::new();
        // The character before: its low bits are the first byte's high bits.
        if offset > 0 {
            let bits = (skip * 6 - offset * 8) as u32;
            let v = bytes[0] >> (8 - bits);
            let mask = (1u8 << bits) - 1;
            b.push_str(&class((0..64u8).filter(|x| x & mask == v)));
        }
        b.push_str(&escape(&enc[skip..end]));
        // The character after: its high bits are the last byte's low bits.
        let rest = ((offset + n) * 8 - end * 6) as u32; // bits of the last byte not yet written
        if rest > 0 {
            let v = bytes[n - 1] & ((1u8 << rest) - 1);
            let shift = 6 - rest;
            b.push_str(&class((0..64u8).filter(|x| x >> shift == v)));
        }
        branches.push(b);
    }
    Some(branches.join("|"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaces_become_ascii_classes() {
        assert_eq!(translate(r"a\sb").unwrap(), r"a[\t\n\f\r ]b");
        assert_eq!(translate(r#"[\s"']"#).unwrap(), r#"[\t\n\f\r "']"#);
        assert_eq!(translate(r"[^\s]").unwrap(), r"[^\t\n\f\r ]");
        assert_eq!(translate(r"x\S+").unwrap(), r"x[^\t\n\f\r ]+");
        assert!(translate(r"(?-u:\b)x").is_err());
        assert!(translate(r"x{0,2000}").is_err());
        assert!(translate(r"x{0,300}").is_ok());
        assert!(translate(r"[^\S]").is_err());
        assert!(translate(r"\d").is_err());
    }

    #[test]
    fn escaped_literals_match_themselves() {
        for l in [
            "stratum+tcp",
            "mining.subscribe",
            "--donate-level",
            "a(b)[c]{d}^$|?*",
        ] {
            let r = regex::Regex::new(&format!("^(?:{})$", escape(l))).unwrap();
            assert!(r.is_match(l), "{l}");
        }
    }

    #[test]
    fn base64_regex_finds_exactly_the_bytes() {
        use base64::Engine as _;
        let re = regex::Regex::new(&base64_regex(b" stratum+tcp://").unwrap()).unwrap();
        let enc = |t: &str| base64::engine::general_purpose::STANDARD.encode(t.as_bytes());
        for pre in ["", "x", "xy", "echo", "xmrig -o", "xmrig  -o"] {
            for post in ["", "p", "pool.example.invalid:3333"] {
                let text = format!("{pre} stratum+tcp://{post}");
                assert!(re.is_match(&enc(&text)), "{text}");
            }
        }
        for bad in [
            "xstratum+tcp://p",
            "a stratum+tcp:/-x",
            "0stratum+tcp://",
            "pstratum+tcp://a",
            " stratum+tcp:/",
        ] {
            for pre in ["", "x", "xy"] {
                let t = format!("{pre}{bad}");
                assert!(!re.is_match(&enc(&t)), "{t}");
            }
        }
        assert!(base64_regex(b"xmrig").is_none());
    }
}
