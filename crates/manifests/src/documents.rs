//! Cutting a YAML stream into its documents.
//!
//! YAML forbids a `---` or `...` marker at the start of a line inside any scalar of a
//! document (production `c-forbidden`), so a line that starts with one always begins or ends a
//! document; cutting there is exact, not a heuristic.

/// One document of a stream: its text, and the 1-based line it starts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Document<'a> {
    pub text: &'a str,
    pub first_line: u32,
    /// Helm's `# Source: chart/templates/x.yaml` comment, when the document has one.
    pub template: Option<&'a str>,
}

fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r']))
}

/// The documents of `text` in order. Chunks holding only comments and blank lines are kept:
/// the parser decides they are empty.
pub fn split(text: &str) -> Vec<Document<'_>> {
    let mut docs = Vec::new();
    let mut start = 0usize;
    let mut start_line = 1u32;
    let mut offset = 0usize;
    // Set after a `...` end marker: text up to the next `---` belongs to no document.
    let mut ended = false;
    for (line_no, line) in (1u32..).zip(text.split_inclusive('\n')) {
        let bare = line.trim_end_matches('\n');
        if is_marker(bare, "---") {
            if !ended && offset > start {
                docs.push(doc(&text[start..offset], start_line));
            }
            start = offset;
            start_line = line_no;
            ended = false;
        } else if is_marker(bare, "...") {
            if !ended {
                docs.push(doc(&text[start..offset], start_line));
            }
            ended = true;
        }
        offset += line.len();
    }
    if !ended && offset > start {
        docs.push(doc(&text[start..offset], start_line));
    }
    docs
}

fn doc(text: &str, first_line: u32) -> Document<'_> {
    let template = text
        .lines()
        .take(4)
        .find_map(|l| l.strip_prefix("# Source: "))
        .map(str::trim);
    Document {
        text,
        first_line,
        template,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_markers_with_lines() {
        let text = "a: 1\n---\n# Source: c/templates/s.yaml\nb: 2\n--- \nc: |\n  ---x\n...\ngarbage\n---\nd: 4";
        let docs = split(text);
        let lines: Vec<u32> = docs.iter().map(|d| d.first_line).collect();
        assert_eq!(lines, vec![1, 2, 5, 10]);
        assert_eq!(docs[1].template, Some("c/templates/s.yaml"));
        assert!(docs[2].text.contains("---x"));
        assert!(!docs.iter().any(|d| d.text.contains("garbage")));
    }

    #[test]
    fn dashes_inside_words_do_not_split() {
        assert_eq!(split("a: ---b\n----\nc: 1\n").len(), 1);
    }
}
