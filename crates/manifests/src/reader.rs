//! Reading inputs into objects, in parallel, with every failure kept as an error entry.

use crate::documents::{self, Document};
use crate::located::{to_json, Node};
use crate::walk::Input;
use crate::ManifestError;
use jackstop_core::object::DOCUMENT_KIND;
use jackstop_core::{FieldLines, InputError, InputStats, Object, Source};
use rayon::prelude::*;
use serde_json::Value;
use std::collections::HashSet;
use std::io::Read;
use std::sync::Arc;

/// Which kinds to keep as objects once parsed. Every document is still parsed (so that
/// malformed input is reported) and counted; only kept kinds are converted and held.
#[derive(Debug, Clone, Default)]
pub enum KindFilter {
    #[default]
    All,
    Kinds(HashSet<String>),
}

impl KindFilter {
    /// `All` means every object kind; non-Kubernetes documents ([`DOCUMENT_KIND`]) are kept
    /// only when named.
    pub fn keeps(&self, kind: &str) -> bool {
        match self {
            KindFilter::All => kind != DOCUMENT_KIND,
            KindFilter::Kinds(k) => k.contains(kind),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Files larger than this are refused with an error entry.
    pub max_file_bytes: u64,
    /// Deepest nesting a document may have.
    pub max_depth: usize,
    pub kinds: KindFilter,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            max_file_bytes: 256 * 1024 * 1024,
            max_depth: 128,
            kinds: KindFilter::All,
        }
    }
}

/// What the inputs held.
#[derive(Debug, Default)]
pub struct ManifestSet {
    pub objects: Vec<Object>,
    pub errors: Vec<InputError>,
    pub stats: InputStats,
}

/// Reads every input; the order of objects and errors follows the order of inputs and of
/// documents inside them, whatever the parallelism.
pub fn read_inputs(inputs: &[Input], opts: &ReadOptions) -> ManifestSet {
    let per_input: Vec<ManifestSet> =
        pool().install(|| inputs.par_iter().map(|i| read_input(i, opts)).collect());
    let mut out = ManifestSet::default();
    for set in per_input {
        out.objects.extend(set.objects);
        out.errors.extend(set.errors);
        out.stats.files += set.stats.files;
        out.stats.bytes += set.stats.bytes;
        out.stats.documents += set.stats.documents;
        out.stats.objects += set.stats.objects;
        out.stats.skipped_non_kubernetes += set.stats.skipped_non_kubernetes;
    }
    out
}

/// Reads one input; never fails as a whole, problems become error entries.
pub fn read_input(input: &Input, opts: &ReadOptions) -> ManifestSet {
    let name = input.display();
    let mut set = ManifestSet::default();
    match load_text(input, opts.max_file_bytes) {
        Ok(text) => {
            set.stats.files = 1;
            set.stats.bytes = text.len() as u64;
            parse_text_in_pool(&text, &name, opts, &mut set);
        }
        Err(e) => set.errors.push(e.to_input_error(&name)),
    }
    set
}

/// The threads documents are parsed on. Parsing recurses once per nesting level (bounded by
/// `ReadOptions::max_depth`); the default 2 MiB thread stack is too small for that bound in
/// unoptimised builds, so the pool's threads get a generous (virtual, lazily committed) stack.
fn pool() -> &'static rayon::ThreadPool {
    static POOL: std::sync::OnceLock<rayon::ThreadPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .stack_size(64 * 1024 * 1024)
            .thread_name(|i| format!("jackstop-parse-{i}"))
            .build()
            .expect("a thread pool can be built")
    })
}

/// Parses a whole stream already in memory (used for files, stdin, and by tests).
pub fn parse_text(text: &str, name: &str, opts: &ReadOptions, set: &mut ManifestSet) {
    pool().install(|| parse_text_in_pool(text, name, opts, set))
}

fn parse_text_in_pool(text: &str, name: &str, opts: &ReadOptions, set: &mut ManifestSet) {
    let path: Arc<str> = Arc::from(name);
    let trimmed = text.trim_start();
    let looks_json = trimmed.starts_with('{') || trimmed.starts_with('[');
    let docs = documents::split(text);
    let results: Vec<DocResult> = docs
        .par_iter()
        .map(|d| parse_document(d, &path, opts))
        .collect();
    if looks_json && results.iter().any(|r| r.error.is_some()) {
        // YAML is nearly a superset of JSON and gives lines for every field; when it refuses a
        // JSON stream (several concatenated documents, say), serde_json reads it without them.
        if let Some(json) = parse_json_stream(text, &path, opts) {
            merge(set, json);
            return;
        }
    }
    for r in results {
        merge(set, r);
    }
}

fn merge(set: &mut ManifestSet, r: DocResult) {
    set.objects.extend(r.objects);
    set.stats.documents += r.documents;
    set.stats.objects += r.object_count;
    set.stats.skipped_non_kubernetes += r.skipped;
    if let Some(e) = r.error {
        set.errors.push(e);
    }
    set.errors.extend(r.warnings);
}

fn load_text(input: &Input, limit: u64) -> Result<String, ManifestError> {
    let bytes = match input {
        Input::Stdin => {
            let mut buf = Vec::new();
            std::io::stdin().take(limit + 1).read_to_end(&mut buf)?;
            if buf.len() as u64 > limit {
                return Err(ManifestError::TooLarge {
                    size: buf.len() as u64,
                    limit,
                });
            }
            buf
        }
        Input::File(p) => {
            let size = std::fs::metadata(p)?.len();
            if size > limit {
                return Err(ManifestError::TooLarge { size, limit });
            }
            std::fs::read(p)?
        }
    };
    decode(bytes)
}

/// Bytes to text: UTF-8 (BOM dropped) or UTF-16 with a BOM; binary and other encodings are
/// refused with the offset of the first bad byte.
fn decode(bytes: Vec<u8>) -> Result<String, ManifestError> {
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(rest, u16::from_le_bytes);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(rest, u16::from_be_bytes);
    }
    if let Some(offset) = bytes.iter().take(64 * 1024).position(|&b| b == 0) {
        return Err(ManifestError::Binary { offset });
    }
    let mut bytes = bytes;
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        bytes.drain(..3);
    }
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u32;
        ManifestError::NotUtf8 { offset, line }
    })
}

fn utf16(bytes: &[u8], f: fn([u8; 2]) -> u16) -> Result<String, ManifestError> {
    let units: Vec<u16> = bytes.chunks_exact(2).map(|c| f([c[0], c[1]])).collect();
    String::from_utf16(&units).map_err(|_| ManifestError::NotUtf8 { offset: 0, line: 1 })
}

#[derive(Default)]
struct DocResult {
    objects: Vec<Object>,
    documents: usize,
    object_count: usize,
    skipped: usize,
    error: Option<InputError>,
    warnings: Vec<InputError>,
}

fn options_for(len: usize, opts: &ReadOptions) -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    // Limits scale with the document: a legitimate document has at most a few events per
    // byte, while an alias bomb has many more events than bytes.
    budget.max_events = (len * 2).max(1_000_000);
    budget.max_nodes = len.max(250_000);
    budget.max_total_scalar_bytes = len.max(1 << 20);
    budget.max_depth = opts.max_depth;
    let mut o = serde_saphyr::Options::default();
    o.budget = Some(budget);
    // What the API server would keep: JSON semantics, the last of repeated keys.
    o.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::LastWins;
    o
}

/// The top-level `kind:` of a document, read from its text without parsing it: a line at column
/// 0 (a top-level key can be nowhere else in block style).
fn kind_in_text(text: &str) -> Option<&str> {
    let rest = text
        .lines()
        .find_map(|l| l.strip_prefix("kind:"))?
        .split('#')
        .next()?
        .trim();
    Some(rest.trim_matches(|c| c == '"' || c == '\''))
}

/// What a document of a kind nobody analyses must still tell: that it is an object, its API
/// group (configuration files are not), and whether it is named.
#[derive(Default)]
struct Skim {
    api_version: Option<String>,
    kind: Option<String>,
    /// Line (0-based, in the document) of the `metadata` mapping, or of `kind`.
    metadata_line: Option<usize>,
    kind_line: Option<usize>,
    named: bool,
}

/// Reads a document's events with serde-saphyr's own parser, without deserialising anything:
/// the whole text is still checked (so malformed YAML is reported), at a fraction of the cost
/// of building its tree. `None` on any error, which the full reading then reports with its
/// position; the same depth and event budget as the full reading applies.
fn skim_events(text: &str, opts: &ReadOptions) -> Option<Skim> {
    use granit_parser::{Event, Parser};
    // Per open collection: whether it is a mapping, and whether its next scalar is a key.
    struct Level {
        map: bool,
        expect_key: bool,
        key: Option<String>,
    }
    let max_events = (text.len() * 2).max(1_000_000);
    let mut stack: Vec<Level> = Vec::new();
    let mut skim = Skim::default();
    let mut seen_top: Vec<String> = Vec::new();
    let mut events = 0usize;
    let mut parser = Parser::new_from_str(text);
    while let Some(next) = parser.next_event() {
        let (event, span) = next.ok()?;
        events += 1;
        if events > max_events || stack.len() > opts.max_depth {
            return None;
        }
        // The key this node is the value of, at the top level and in `metadata`.
        let top_key = |stack: &[Level]| match stack {
            [top] if top.map && !top.expect_key => top.key.as_deref().map(str::to_string),
            _ => None,
        };
        let in_metadata = stack.len() == 2
            && stack[0].key.as_deref() == Some("metadata")
            && stack[1].map
            && stack[1].expect_key;
        match event {
            Event::Scalar(value, ..) => {
                if in_metadata && (value == "name" || value == "generateName") {
                    skim.named = true;
                }
                match top_key(&stack).as_deref() {
                    // `metadata:` given a scalar: still where the full reading points.
                    Some("metadata") => skim.metadata_line = Some(span.start.line()),
                    Some("kind") => {
                        skim.kind = Some(value.to_string());
                        skim.kind_line = Some(span.start.line());
                    }
                    Some("apiVersion") => skim.api_version = Some(value.to_string()),
                    _ => {}
                }
                // Merge keys are the full reading's to resolve (and to refuse).
                if value == "<<" && stack.last().is_some_and(|l| l.map && l.expect_key) {
                    return None;
                }
                // A repeated top-level key that matters: the full reading decides which wins.
                if stack.len() == 1
                    && stack[0].map
                    && stack[0].expect_key
                    && matches!(value.as_ref(), "kind" | "apiVersion" | "metadata")
                {
                    if seen_top.contains(&value.as_ref().to_string()) {
                        return None;
                    }
                    seen_top.push(value.to_string());
                }
                if let Some(l) = stack.last_mut() {
                    if l.map {
                        if l.expect_key {
                            l.key = Some(value.into_owned());
                        }
                        l.expect_key = !l.expect_key;
                    }
                }
            }
            Event::Alias(_) => {
                if let Some(l) = stack.last_mut() {
                    if l.map {
                        l.expect_key = !l.expect_key;
                    }
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                // A collection as a mapping key: the full reading decides what it makes of it.
                if stack.last().is_some_and(|l| l.map && l.expect_key) {
                    return None;
                }
                let map = matches!(event, Event::MappingStart(..));
                if top_key(&stack).as_deref() == Some("metadata") {
                    skim.metadata_line = Some(span.start.line());
                }
                stack.push(Level {
                    map,
                    expect_key: true,
                    key: None,
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                if let Some(l) = stack.last_mut() {
                    if l.map {
                        l.expect_key = !l.expect_key;
                    }
                }
            }
            _ => {}
        }
    }
    Some(skim)
}

/// Reads a document of a kind that is not kept without building its tree. `None` when the
/// document turns out to need the full reading after all (an error, a kept kind, a List).
fn skim_document(doc: &Document<'_>, path: &Arc<str>, opts: &ReadOptions) -> Option<DocResult> {
    let offset = doc.first_line - 1;
    let mut r = DocResult::default();
    let skim = skim_events(doc.text, opts)?;
    let kind = skim.kind.as_deref()?;
    let api_version = skim.api_version.as_deref()?;
    if opts.kinds.keeps(kind) || kind.ends_with("List") {
        return None;
    }
    r.documents = 1;
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    if CONFIGURATION_GROUPS.contains(&group) || (kind == "Config" && api_version == "v1") {
        r.skipped = 1;
        return Some(r);
    }
    r.object_count = 1;
    if !skim.named {
        let line = skim
            .metadata_line
            .or(skim.kind_line)
            .map_or(doc.first_line, |l| l as u32 + offset);
        r.warnings.push(
            ManifestError::Unnamed {
                kind: kind.to_string(),
                line,
            }
            .to_input_error(path),
        );
    }
    Some(r)
}

fn parse_document(doc: &Document<'_>, path: &Arc<str>, opts: &ReadOptions) -> DocResult {
    if let Some(kind) = kind_in_text(doc.text) {
        if !opts.kinds.keeps(kind) && !kind.ends_with("List") {
            if let Some(r) = skim_document(doc, path, opts) {
                return r;
            }
        }
    }
    let mut r = DocResult::default();
    let offset = doc.first_line - 1;
    let node: Node =
        match serde_saphyr::from_str_with_options(doc.text, options_for(doc.text.len(), opts)) {
            Ok(n) => n,
            Err(e) => {
                r.documents = 1;
                r.error = Some(yaml_error(&e, offset).to_input_error(path));
                return r;
            }
        };
    if matches!(node, Node::Null) {
        return r;
    }
    r.documents = 1;
    let source = |line: u32| Source {
        path: path.clone(),
        line,
        template: doc.template.map(Arc::from),
    };
    collect_objects(&node, doc.first_line, offset, &source, opts, &mut r);
    r
}

/// Finds the object(s) in a parsed document: one object, the items of a `kind: List`, or a
/// Kubeflow Pipelines spec; anything else is counted as skipped.
fn collect_objects(
    node: &Node,
    line: u32,
    offset: u32,
    source: &dyn Fn(u32) -> Source,
    opts: &ReadOptions,
    r: &mut DocResult,
) {
    let kind = node.kind();
    let has_api_version = node
        .get("apiVersion")
        .is_some_and(|v| v.value.as_str().is_some());
    match kind {
        Some(k) if k.ends_with("List") && node.get("items").is_some() => {
            if let Some(Node::Seq(items)) = node.get("items").map(|i| &i.value) {
                for item in items {
                    collect_objects(
                        &item.value,
                        (item.referenced.line() as u32) + offset,
                        offset,
                        source,
                        opts,
                        r,
                    );
                }
            }
        }
        Some(k) if has_api_version && is_configuration(node, k) => r.skipped += 1,
        Some(k) if has_api_version => {
            r.object_count += 1;
            let meta = node.get("metadata");
            let named = meta.is_some_and(|m| {
                m.value
                    .get("name")
                    .or_else(|| m.value.get("generateName"))
                    .is_some()
            });
            if !named {
                // Point at `metadata:` (or `kind:`), not at comments above the object.
                let line = meta
                    .or_else(|| node.get("kind"))
                    .map_or(line, |n| (n.referenced.line() as u32) + offset);
                r.warnings.push(
                    ManifestError::Unnamed {
                        kind: k.to_string(),
                        line,
                    }
                    .to_input_error(&source(line).path),
                );
            }
            if opts.kinds.keeps(k) {
                let mut fields = FieldLines::default();
                let body = to_json(node, &mut String::new(), offset, &mut fields);
                if let Some(o) = Object::from_value(body, source(line), fields) {
                    r.objects.push(o);
                }
            }
        }
        _ => match pipeline_spec_name(node) {
            Some(name) => {
                r.object_count += 1;
                if opts.kinds.keeps("PipelineSpec") {
                    let mut fields = FieldLines::default();
                    let body = to_json(node, &mut String::new(), offset, &mut fields);
                    r.objects
                        .push(pipeline_object(body, name, source(line), fields));
                }
            }
            None => {
                r.skipped += 1;
                if opts.kinds.keeps(DOCUMENT_KIND) && matches!(node, Node::Map(_) | Node::Seq(_)) {
                    let mut fields = FieldLines::default();
                    let body = to_json(node, &mut String::new(), offset, &mut fields);
                    r.objects.push(document_object(body, source(line), fields));
                }
            }
        },
    }
}

/// A non-Kubernetes document as an object named after its file.
fn document_object(body: Value, source: Source, fields: FieldLines) -> Object {
    let name = source
        .path
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .to_string();
    Object {
        api_version: String::new(),
        kind: DOCUMENT_KIND.into(),
        namespace: None,
        name,
        body,
        source,
        fields,
    }
}

/// API groups of configuration files that look like objects but never live in a cluster
/// (kustomizations, audit policies and events, component configs, kubeconfigs).
const CONFIGURATION_GROUPS: &[&str] = &[
    "kustomize.config.k8s.io",
    "audit.k8s.io",
    "apiserver.config.k8s.io",
    "apiserver.k8s.io",
    "kubeadm.k8s.io",
    "kubelet.config.k8s.io",
    "kubeproxy.config.k8s.io",
    "kubescheduler.config.k8s.io",
    "client.authentication.k8s.io",
    "config.k8s.io",
];

fn is_configuration(node: &Node, kind: &str) -> bool {
    let api_version = node
        .get("apiVersion")
        .and_then(|v| v.value.as_str())
        .unwrap_or_default();
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    CONFIGURATION_GROUPS.contains(&group) || (kind == "Config" && api_version == "v1")
}

/// The contract's naming of Kubeflow Pipelines v2 documents, which have no `kind`: a pipeline
/// spec (`pipelineInfo` + `deploymentSpec`) or a PipelineJob (`pipelineSpec` + `runtimeConfig`).
fn pipeline_spec_name(node: &Node) -> Option<String> {
    let spec = if node.get("pipelineInfo").is_some() && node.get("deploymentSpec").is_some() {
        node
    } else if node.get("runtimeConfig").is_some() {
        &node.get("pipelineSpec")?.value
    } else {
        return None;
    };
    let name = spec
        .get("pipelineInfo")?
        .value
        .get("name")?
        .value
        .as_str()?;
    Some(name.to_string())
}

fn pipeline_object(body: Value, name: String, source: Source, fields: FieldLines) -> Object {
    Object {
        api_version: String::new(),
        kind: "PipelineSpec".into(),
        namespace: None,
        name,
        body,
        source,
        fields,
    }
}

fn yaml_error(e: &serde_saphyr::Error, offset: u32) -> ManifestError {
    let loc = e.location();
    // serde-saphyr renders a source snippet under the message; the first line is the message.
    let text = e.to_string();
    let message = text
        .lines()
        .next()
        .unwrap_or("syntax error")
        .trim()
        .to_string();
    ManifestError::Yaml {
        message,
        line: loc.map(|l| l.line() as u32 + offset),
        column: loc.map(|l| l.column() as u32),
    }
}

/// A stream of JSON documents (what `jq` prints), read with serde_json. `None` when serde_json
/// refuses it too; the YAML errors then stand.
fn parse_json_stream(text: &str, path: &Arc<str>, opts: &ReadOptions) -> Option<DocResult> {
    let mut r = DocResult::default();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let mut start = 0usize;
    loop {
        let rest = &text[start..];
        let doc_start = start + (rest.len() - rest.trim_start().len());
        let line = 1 + text[..doc_start].matches('\n').count() as u32;
        match stream.next() {
            None => break,
            Some(Ok(v)) => {
                r.documents += 1;
                let source = |l: u32| Source {
                    path: path.clone(),
                    line: l,
                    template: None,
                };
                collect_json(v, line, &source, opts, &mut r);
                start = stream.byte_offset();
            }
            Some(Err(e)) => {
                if r.documents == 0 {
                    return None;
                }
                r.error = Some(
                    ManifestError::Json {
                        message: e.to_string(),
                        line: e.line() as u32,
                        column: e.column() as u32,
                    }
                    .to_input_error(path),
                );
                break;
            }
        }
    }
    Some(r)
}

fn collect_json(
    v: Value,
    line: u32,
    source: &dyn Fn(u32) -> Source,
    opts: &ReadOptions,
    r: &mut DocResult,
) {
    let kind = v.get("kind").and_then(Value::as_str).map(str::to_string);
    match kind {
        Some(k) if k.ends_with("List") && v.get("items").is_some_and(Value::is_array) => {
            if let Value::Object(mut m) = v {
                if let Some(Value::Array(items)) = m.remove("items") {
                    for item in items {
                        collect_json(item, line, source, opts, r);
                    }
                }
            }
        }
        Some(k) if v.get("apiVersion").is_some_and(Value::is_string) => {
            r.object_count += 1;
            if opts.kinds.keeps(&k) {
                if let Some(o) = Object::from_value(v, source(line), FieldLines::default()) {
                    r.objects.push(o);
                }
            }
        }
        _ => {
            r.skipped += 1;
            if opts.kinds.keeps(DOCUMENT_KIND) && (v.is_object() || v.is_array()) {
                r.objects
                    .push(document_object(v, source(line), FieldLines::default()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ManifestSet {
        let mut set = ManifestSet::default();
        parse_text(text, "t.yaml", &ReadOptions::default(), &mut set);
        set
    }

    #[test]
    fn lists_and_lines() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: a}\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: b}\n";
        let set = parse(text);
        assert_eq!(set.objects.len(), 2);
        assert_eq!(set.objects[1].source.line, 7);
        assert_eq!(set.objects[1].line_of("metadata"), 9);
        assert!(set.errors.is_empty());
    }

    #[test]
    fn bad_document_loses_only_itself() {
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\nkind: [unclosed\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: b}\n";
        let set = parse(text);
        assert_eq!(set.objects.len(), 2);
        assert_eq!(set.errors.len(), 1);
        assert_eq!(
            set.errors[0].line.map(|l| l >= 5),
            Some(true),
            "{:?}",
            set.errors
        );
    }

    #[test]
    fn non_kubernetes_is_counted_not_an_error() {
        let set = parse("name: x\nsteps: []\n---\n# only a comment\n");
        assert_eq!(set.stats.skipped_non_kubernetes, 1);
        assert_eq!(set.stats.documents, 1);
        assert!(set.errors.is_empty() && set.objects.is_empty());
    }

    #[test]
    fn json_stream_falls_back_to_serde_json() {
        let text = "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\"}}\n{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"b\"}}\n";
        let set = parse(text);
        assert_eq!(set.objects.len(), 2, "{:?}", set.errors);
        assert_eq!(set.objects[1].source.line, 2);
    }

    #[test]
    fn alias_bomb_is_bounded() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..30 {
            let p = i - 1;
            text.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
        }
        let t = std::time::Instant::now();
        let set = parse(&text);
        assert_eq!(set.errors.len(), 1);
        assert!(t.elapsed().as_secs() < 5);
    }

    #[test]
    fn deep_nesting_is_bounded() {
        for depth in [100usize, 200, 100_000] {
            let text = format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: x}}\ndata: {}{}\n",
                "[".repeat(depth),
                "]".repeat(depth)
            );
            let set = parse(&text);
            if depth > 128 {
                assert_eq!(set.errors.len(), 1, "depth {depth}");
                assert!(set.objects.is_empty());
            } else {
                assert!(set.errors.is_empty(), "depth {depth}: {:?}", set.errors);
            }
            let block: String = (0..depth.min(5000))
                .map(|i| format!("{}k:\n", " ".repeat(i)))
                .collect();
            let set = parse(&block);
            assert!(set.objects.is_empty());
        }
    }

    #[test]
    fn unnamed_object_is_reported_and_kept() {
        let set = parse("apiVersion: v1\nkind: Service\nspec: {type: NodePort}\n");
        assert_eq!(set.objects.len(), 1);
        assert_eq!(set.errors.len(), 1);
        assert!(set.errors[0].message.contains("no metadata.name"));
    }

    #[test]
    fn skimmed_kinds_are_counted_checked_and_reported_like_the_rest() {
        let opts = ReadOptions {
            kinds: KindFilter::Kinds(["Service".to_string()].into()),
            ..ReadOptions::default()
        };
        let text = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: a}\nspec: {x: [1, 2]}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {a: b}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad}\ndata: {a: [unclosed\n---\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n---\napiVersion: v1\nkind: ConfigMap\nkind: ConfigMap\nmetadata: {name: twice}\n";
        let mut set = ManifestSet::default();
        parse_text(text, "t.yaml", &opts, &mut set);
        assert!(set.objects.is_empty());
        assert_eq!(set.stats.documents, 5);
        assert_eq!(
            set.stats.objects, 3,
            "CRD, unnamed ConfigMap, repeated-kind ConfigMap"
        );
        assert_eq!(set.stats.skipped_non_kubernetes, 1, "the kustomization");
        let msgs: Vec<String> = set
            .errors
            .iter()
            .map(|e| format!("{}:{}", e.line.unwrap_or(0), e.message))
            .collect();
        assert_eq!(set.errors.len(), 2, "{msgs:?}");
        assert!(
            msgs.iter().any(|m| m.contains("no metadata.name")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("14:") && m.contains("unclosed")),
            "{msgs:?}"
        );
        // The full reading says the same, at the same lines.
        let full = parse(text);
        assert_eq!(full.errors, set.errors);
        assert_eq!(full.stats, set.stats);
        // Found by fuzzing: a repeated `kind` in an unnamed object; `metadata` given a scalar
        // or a list.
        for text in [
            "apiVersion: v1\nkind: Pod\nspec:\n- x\nkind: Pod\nspec: []\n",
            "apiVersion: ray.io/v1\nkind: RayJob\nmetadata:\n  nameless-value\n  continued\nspec: {}\n",
            "apiVersion: v1\nkind: Pod\nmetadata:\n- name: x\n",
            "--- !!map\napiVersion: v1\nkind: Pod\n? complex\n: key\n<<: YAML 1.2\n",
            "apiVersion: v1\nkind: Pod\n? [a, b]\n: c\n",
        ] {
            let mut skimmed = ManifestSet::default();
            parse_text(text, "t.yaml", &opts, &mut skimmed);
            let full = parse(text);
            assert_eq!(full.errors, skimmed.errors, "{text}");
            assert_eq!(full.stats, skimmed.stats, "{text}");
        }
    }

    #[test]
    fn non_kubernetes_documents_are_kept_when_asked() {
        let text = "services:\n  x: {image: a}\n---\nplain scalar\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n";
        let opts = ReadOptions {
            kinds: KindFilter::Kinds([DOCUMENT_KIND.to_string()].into()),
            ..ReadOptions::default()
        };
        let mut set = ManifestSet::default();
        parse_text(text, "dir/compose.yml", &opts, &mut set);
        assert_eq!(set.stats.skipped_non_kubernetes, 2);
        assert_eq!(
            set.objects.len(),
            1,
            "the map only: not the scalar, not the ConfigMap"
        );
        let d = &set.objects[0];
        assert_eq!(
            (d.kind.as_str(), d.name.as_str()),
            (DOCUMENT_KIND, "compose.yml")
        );
        assert_eq!(d.line_of("services.x.image"), 2);
        // Not asked for: not kept.
        assert!(parse("services: {x: {image: a}}\n").objects.is_empty());
    }

    #[test]
    fn pipeline_spec_gets_the_contract_kind() {
        let set = parse("pipelineInfo: {name: p}\ndeploymentSpec: {executors: {}}\nroot: {}\n");
        assert_eq!(set.objects[0].kind, "PipelineSpec");
        assert_eq!(set.objects[0].name, "p");
    }

    #[test]
    fn binary_and_bad_utf8() {
        assert!(matches!(
            decode(vec![b'a', 0, 1]),
            Err(ManifestError::Binary { offset: 1 })
        ));
        assert!(matches!(
            decode(b"a: 1\nb: \xff\n".to_vec()),
            Err(ManifestError::NotUtf8 { line: 2, .. })
        ));
        assert_eq!(decode(b"\xEF\xBB\xBFa: 1".to_vec()).unwrap(), "a: 1");
    }
}
