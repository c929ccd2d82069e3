//! Bad input never panics and loses nothing: each bad file gets a clear `errors` entry, and the
//! findings of every other file are still reported.

mod common;

use common::{jackstop, repo_root, Run};
use serde_json::Value;
use std::path::Path;

/// A directory holding a real finding next to `bad` files, scanned as a whole.
fn scan_with_good(bad: &[(&str, Vec<u8>)]) -> (Run, Value) {
    let dir = tempfile::tempdir().unwrap();
    let good = repo_root().join("tests/rules/JS-EXP-004/hit.yaml");
    std::fs::copy(good, dir.path().join("good.yaml")).unwrap();
    for (name, data) in bad {
        std::fs::write(dir.path().join(name), data).unwrap();
    }
    let r = jackstop(&["scan", dir.path().to_str().unwrap(), "-f", "json"], None);
    let doc = r.json();
    // The good file's critical finding survives whatever sits beside it, and fails the run.
    assert_eq!(r.code, 1, "stderr: {}", r.stderr);
    assert!(
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "JS-EXP-004"),
        "the good file's finding was lost: {doc:#}"
    );
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    drop(dir);
    (r, doc)
}

fn error_for<'a>(doc: &'a Value, file: &str) -> &'a Value {
    doc["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| Path::new(e["path"].as_str().unwrap()).file_name().unwrap() == file)
        .unwrap_or_else(|| panic!("no error entry for {file}: {doc:#}"))
}

#[test]
fn malformed_yaml_reports_path_line_and_column() {
    let text = b"apiVersion: v1\nkind: Service\nmetadata:\n  name: a\nspec:\n  ports: [80,\n  type: x\n---\napiVersion: v1\nkind: Service\nmetadata: {name: b}\nspec: {type: NodePort, selector: {app: kubernetes-dashboard}}\n".to_vec();
    let (r, doc) = scan_with_good(&[("broken.yaml", text)]);
    let e = error_for(&doc, "broken.yaml");
    assert!(e["line"].as_u64().unwrap() >= 6, "{e}");
    assert!(e["column"].is_u64(), "{e}");
    assert!(
        e["message"].as_str().unwrap().starts_with("invalid YAML"),
        "{e}"
    );
    // The stderr line names the file and line too, for people reading a terminal.
    assert!(r.stderr.contains("broken.yaml:"), "{}", r.stderr);
    // The document after the broken one is still read.
    assert!(doc["summary"]["inputs"]["objects"].as_u64().unwrap() >= 4);
}

#[test]
fn billion_laughs_is_refused_quickly() {
    let mut text = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\ndata:\n  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..12 {
        let p = i - 1;
        text.push_str(&format!(
            "  a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let t = std::time::Instant::now();
    let (_, doc) = scan_with_good(&[("lol.yaml", text.into_bytes())]);
    assert!(t.elapsed().as_secs() < 20);
    let e = error_for(&doc, "lol.yaml");
    assert!(
        e["message"].as_str().unwrap().contains("invalid YAML"),
        "{e}"
    );
}

#[test]
fn deep_nesting_is_refused() {
    let text = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: deep}}\ndata: {}{}\n",
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    let (_, doc) = scan_with_good(&[("deep.yaml", text.into_bytes())]);
    error_for(&doc, "deep.yaml");
}

#[test]
fn binary_non_utf8_and_empty_files() {
    let (_, doc) = scan_with_good(&[
        (
            "binary.yaml",
            vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0],
        ),
        (
            "latin1.yaml",
            b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: caf\xe9}\n".to_vec(),
        ),
        ("empty.yaml", Vec::new()),
        ("comments.yaml", b"# nothing here\n---\n".to_vec()),
    ]);
    assert!(error_for(&doc, "binary.yaml")["message"]
        .as_str()
        .unwrap()
        .contains("binary"));
    let e = error_for(&doc, "latin1.yaml");
    assert!(e["message"].as_str().unwrap().contains("UTF-8"), "{e}");
    assert_eq!(e["line"], 3);
    // Empty files and comment-only documents are not errors.
    let errors = doc["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{errors:#?}");
}

#[test]
fn objects_without_metadata_are_reported_and_still_analysed() {
    let text = b"apiVersion: v1\nkind: Service\nspec:\n  type: NodePort\n  selector: {k8s-app: kubernetes-dashboard}\n".to_vec();
    let (_, doc) = scan_with_good(&[("nameless.yaml", text)]);
    let e = error_for(&doc, "nameless.yaml");
    assert!(
        e["message"].as_str().unwrap().contains("no metadata.name"),
        "{e}"
    );
}

#[test]
fn non_kubernetes_yaml_is_counted_not_an_error() {
    let (_, doc) = scan_with_good(&[
        (
            "compose.yaml",
            b"services:\n  web:\n    image: nginx\n".to_vec(),
        ),
        ("list.json", b"[1, 2, 3]".to_vec()),
    ]);
    assert_eq!(doc["errors"].as_array().unwrap().len(), 0, "{doc:#}");
    assert_eq!(doc["summary"]["inputs"]["skipped_non_kubernetes"], 2);
}

/// A 200 MB file: a huge valid document is read within the size limit, bounded in time;
/// above `--max-file-size` it is refused with an error, never read into memory.
#[test]
fn two_hundred_megabyte_file() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.yaml");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
        // 200 MB of one ConfigMap's data lines: valid YAML, nothing to find.
        writeln!(
            f,
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: big}}\ndata:"
        )
        .unwrap();
        let line = format!("  k{{}}: {}\n", "x".repeat(90));
        let mut written = 0u64;
        let mut i = 0u64;
        while written < 200 * 1024 * 1024 {
            let l = line.replace("{}", &i.to_string());
            f.write_all(l.as_bytes()).unwrap();
            written += l.len() as u64;
            i += 1;
        }
    }
    let good = repo_root().join("tests/rules/JS-EXP-004/hit.yaml");
    let r = jackstop(
        &[
            "scan",
            good.to_str().unwrap(),
            big.to_str().unwrap(),
            "-f",
            "json",
            "--max-file-size",
            "104857600",
        ],
        None,
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let doc = r.json();
    let e = error_for(&doc, "big.yaml");
    assert!(e["message"].as_str().unwrap().contains("over the"), "{e}");
    assert!(doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["rule"] == "JS-EXP-004"));
}

#[test]
fn nothing_readable_exits_2() {
    let r = jackstop(&["scan", "/nonexistent/path.yaml"], None);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("/nonexistent/path.yaml"), "{}", r.stderr);
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("only.yaml");
    std::fs::write(&bin, [0u8, 1, 2, 3]).unwrap();
    let r = jackstop(&["scan", bin.to_str().unwrap()], None);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("binary"), "{}", r.stderr);
}
