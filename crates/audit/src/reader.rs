//! Reading audit logs: JSON lines (what the API server's log backend writes), one-line or
//! pretty-printed `EventList` documents (what its webhook backend posts), plain or gzip, from
//! files or stdin, streaming.
//!
//! Why it is built this way:
//! - Memory does not grow with a log's length: lines are handed on one at a time from a 1 MiB
//!   buffer, without a copy unless a line spans two reads, and a line longer than
//!   `max_event_bytes` is skipped and reported, not held. Only a document that is not JSON
//!   lines (a pretty-printed EventList) is read whole, up to `max_document_bytes`.
//! - Most events of a busy cluster are ones no rule looks at: reads by controllers (get, list,
//!   watch), lease renewals, status updates, and the RequestReceived stage of every write.
//!   Their lines are not decoded: the line's [`EventHead`] (its stage, verb, resource and
//!   subresource, read from its own top-level keys without decoding it, and whether it names
//!   an anonymous user anywhere) is enough for the reader to drop the stages it never hands
//!   on, and for the sink to say which events it wants ([`EventSink::wants`]). The rest are
//!   counted, except one whose time would close something the sink holds open (a burst,
//!   [`EventSink::open_until`]): skipping changes nothing that is found. Every other line is
//!   decoded, borrowing its strings.
//! - A bad line (not JSON, cut short, not an audit event, a version jackstop does not read)
//!   is counted and reported with its file and line, and reading goes on; a gzip stream that
//!   ends early is reported once, and what came before it is kept.

use crate::event::{Event, EventHead};
use jackstop_core::InputError;
use memchr::memmem::Finder;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::io::{BufRead, BufReader, Read};

/// Limits and the time range.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// A longer line is skipped and reported.
    pub max_event_bytes: usize,
    /// The most of a non-JSON-lines document (a pretty EventList) that is read.
    pub max_document_bytes: usize,
    /// Events before this time are counted, not analysed.
    pub since: Option<jiff::Timestamp>,
    /// Events at or after this time are counted, not analysed.
    pub until: Option<jiff::Timestamp>,
    /// Errors listed per file; more are counted in one last entry.
    pub max_errors_per_file: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            max_event_bytes: 16 << 20,
            max_document_bytes: 256 << 20,
            since: None,
            until: None,
            max_errors_per_file: 50,
        }
    }
}

/// Counts of what was read.
#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditStats {
    pub files: usize,
    pub bytes: u64,
    pub lines: u64,
    /// Audit events read (whatever their stage or time).
    pub events: u64,
    /// Events handed to the rules.
    pub analysed: u64,
    /// Reads (get, list, watch) the sink did not want, counted without decoding (see the
    /// module's doc).
    pub reads_skipped: u64,
    /// Other events the sink did not want (lease renewals, status updates), counted without
    /// decoding.
    pub writes_skipped: u64,
    /// RequestReceived and ResponseStarted events (their ResponseComplete is analysed).
    pub other_stages: u64,
    /// Events outside --since/--until.
    pub out_of_range: u64,
    /// Lines that are not audit events: not JSON, cut short, too long, another kind or version.
    pub bad_lines: u64,
}

/// Where an event was read.
#[derive(Debug, Clone, Copy)]
pub struct Position<'p> {
    pub path: &'p str,
    pub line: u64,
}

/// What receives the events.
pub trait EventSink {
    /// Whether the event that `head` tells of is to be decoded and handed to
    /// [`EventSink::event`]; one that is not is counted without being decoded. An event whose
    /// line has no head (see [`EventHead`]) is handed on whatever this says. Every event,
    /// unless a sink says otherwise.
    fn wants(&self, head: &EventHead<'_>) -> bool {
        let _ = head;
        true
    }

    /// The time past which any event, wanted or not, may change what the sink finds (a clock
    /// that closes what it holds open); `None` while nothing is open. An event the sink does
    /// not want whose time is not before this, or cannot be told from its line, is decoded and
    /// handed on after all, so that skipping never changes what is found.
    fn open_until(&self) -> Option<jiff::Timestamp> {
        None
    }

    fn event(&mut self, event: &Event<'_>, at: Position<'_>);
}

impl<F: FnMut(&Event<'_>, Position<'_>)> EventSink for F {
    fn event(&mut self, event: &Event<'_>, at: Position<'_>) {
        self(event, at)
    }
}

/// Reads audit inputs into a sink, counting and reporting as it goes.
pub struct AuditReader {
    opts: ReadOptions,
    pub stats: AuditStats,
    pub errors: Vec<InputError>,
    finders: Finders,
    file_errors: usize,
    /// Audit IDs of long-running requests already analysed (bounded).
    long_running: std::collections::HashSet<String>,
}

/// Most long-running audit IDs remembered; past that the set starts again (an exec's two
/// stages are seconds to minutes apart, never a million requests).
const MAX_LONG_RUNNING: usize = 100_000;

struct Finders {
    anonymous: Finder<'static>,
    unauthenticated: Finder<'static>,
    escape: Finder<'static>,
}

#[derive(Deserialize)]
struct EventList<'a> {
    #[serde(borrow, default)]
    items: Vec<&'a RawValue>,
}

impl AuditReader {
    pub fn new(opts: ReadOptions) -> AuditReader {
        AuditReader {
            opts,
            stats: AuditStats::default(),
            errors: Vec::new(),
            finders: Finders {
                anonymous: Finder::new(b"system:anonymous").into_owned(),
                unauthenticated: Finder::new(b"system:unauthenticated").into_owned(),
                escape: Finder::new(b"\\u00").into_owned(),
            },
            file_errors: 0,
            long_running: std::collections::HashSet::new(),
        }
    }

    /// A file, stdin for `-`, or a directory's files in name order: the API server's log
    /// directory, where rotated logs (`audit-2021-06-08T03-14-09.123.log.gz`) sort before the
    /// current `audit.log`, in the order they were written. Hidden files and subdirectories
    /// are left out.
    pub fn read_path(&mut self, path: &str, sink: &mut dyn EventSink) {
        if path == "-" {
            let stdin = std::io::stdin();
            self.read_stream(stdin.lock(), "-", sink);
            return;
        }
        if std::path::Path::new(path).is_dir() {
            let mut files: Vec<std::path::PathBuf> = match std::fs::read_dir(path) {
                Ok(entries) => entries
                    .filter_map(Result::ok)
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    .map(|e| e.path())
                    .collect(),
                Err(e) => {
                    self.errors.push(InputError {
                        path: path.to_string(),
                        line: None,
                        column: None,
                        message: format!("cannot list: {e}"),
                    });
                    return;
                }
            };
            if files.is_empty() {
                self.errors.push(InputError {
                    path: path.to_string(),
                    line: None,
                    column: None,
                    message: "a directory with no files in it".into(),
                });
            }
            files.sort();
            for f in files {
                self.read_path(&f.to_string_lossy(), sink);
            }
            return;
        }
        match std::fs::File::open(path) {
            Ok(f) => self.read_stream(f, path, sink),
            Err(e) => self.errors.push(InputError {
                path: path.to_string(),
                line: None,
                column: None,
                message: format!("cannot read: {e}"),
            }),
        }
    }

    /// One input, plain or gzip (told by its first bytes).
    pub fn read_stream(&mut self, input: impl Read, name: &str, sink: &mut dyn EventSink) {
        self.stats.files += 1;
        self.file_errors = 0;
        let mut r = BufReader::with_capacity(1 << 20, input);
        let gzip = matches!(r.fill_buf(), Ok(b) if b.starts_with(&[0x1f, 0x8b]));
        if gzip {
            let gz = flate2::bufread::MultiGzDecoder::new(r);
            self.lines(BufReader::with_capacity(1 << 20, gz), name, true, sink);
        } else {
            self.lines(r, name, false, sink);
        }
        self.close_file(name);
    }

    fn close_file(&mut self, name: &str) {
        let max = self.opts.max_errors_per_file;
        if self.file_errors > max {
            self.errors.push(InputError {
                path: name.to_string(),
                line: None,
                column: None,
                message: format!("{} more bad lines not listed", self.file_errors - max),
            });
        }
    }

    fn error(&mut self, path: &str, line: Option<u64>, column: Option<usize>, message: String) {
        self.file_errors += 1;
        if self.file_errors <= self.opts.max_errors_per_file {
            self.errors.push(InputError {
                path: path.to_string(),
                line: line.map(|l| u32::try_from(l).unwrap_or(u32::MAX)),
                column: column.map(|c| u32::try_from(c).unwrap_or(u32::MAX)),
                message,
            });
        }
    }

    fn bad(&mut self, path: &str, line: u64, column: Option<usize>, message: String) {
        self.stats.bad_lines += 1;
        self.error(path, Some(line), column, message);
    }

    fn lines(&mut self, mut r: impl BufRead, name: &str, gzip: bool, sink: &mut dyn EventSink) {
        let max = self.opts.max_event_bytes;
        let mut carry: Vec<u8> = Vec::new();
        // The line being read is longer than `max`: it is skipped to its end.
        let mut oversize = false;
        let mut line_no: u64 = 0;
        // A document that is not JSON lines, from its first line on, and whether it outgrew
        // `max_document_bytes`.
        let mut document: Option<(u64, Vec<u8>)> = None;
        let mut document_oversize = false;
        let mut seen_content = false;
        loop {
            let buf = match r.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let what = if gzip && e.kind() == std::io::ErrorKind::UnexpectedEof {
                        "the gzip stream ends early".to_string()
                    } else if gzip {
                        format!("the gzip stream is corrupt ({e})")
                    } else {
                        format!("read error ({e})")
                    };
                    self.error(
                        name,
                        Some(line_no + 1),
                        None,
                        format!("{what}; the {line_no} lines before are kept"),
                    );
                    // The partial line it ends in is part of that one error.
                    if !carry.is_empty() {
                        self.stats.bad_lines += 1;
                        carry.clear();
                    }
                    oversize = false;
                    break;
                }
            };
            if buf.is_empty() {
                break;
            }
            if let Some((_, doc)) = &mut document {
                let n = buf.len();
                if doc.len() + n <= self.opts.max_document_bytes {
                    doc.extend_from_slice(buf);
                } else {
                    document_oversize = true;
                }
                self.stats.bytes += n as u64;
                r.consume(n);
                continue;
            }
            match memchr::memchr(b'\n', buf) {
                Some(i) => {
                    line_no += 1;
                    let ready: Option<&[u8]> = if oversize {
                        None
                    } else if carry.is_empty() && i <= max {
                        Some(&buf[..i])
                    } else if carry.len() + i <= max {
                        carry.extend_from_slice(&buf[..i]);
                        Some(&carry[..])
                    } else {
                        None
                    };
                    let first = !seen_content;
                    seen_content |= self.complete(ready, first, name, line_no, &mut document, sink);
                    oversize = false;
                    carry.clear();
                    self.stats.bytes += i as u64 + 1;
                    r.consume(i + 1);
                }
                None => {
                    let n = buf.len();
                    if !oversize {
                        if carry.len() + n > max {
                            oversize = true;
                            carry = Vec::new();
                        } else {
                            carry.extend_from_slice(buf);
                        }
                    }
                    self.stats.bytes += n as u64;
                    r.consume(n);
                }
            }
        }
        // The last line, without a newline.
        if oversize || !carry.is_empty() {
            line_no += 1;
            let ready = (!oversize).then_some(&carry[..]);
            self.complete(ready, !seen_content, name, line_no, &mut document, sink);
        }
        if let Some((first, doc)) = document {
            if document_oversize {
                self.bad(
                    name,
                    first,
                    None,
                    format!(
                        "a document larger than {} bytes; not read (write audit logs as JSON lines)",
                        self.opts.max_document_bytes
                    ),
                );
            } else {
                self.document(&doc, name, first, sink);
            }
        }
    }

    /// A line read whole (`None`: it was longer than `max_event_bytes`). The first line with
    /// content may open a document that spans lines, which `document` then collects. Whether
    /// the line had content.
    fn complete(
        &mut self,
        line: Option<&[u8]>,
        first: bool,
        name: &str,
        line_no: u64,
        document: &mut Option<(u64, Vec<u8>)>,
        sink: &mut dyn EventSink,
    ) -> bool {
        let Some(line) = line else {
            self.stats.lines += 1;
            let max = self.opts.max_event_bytes;
            self.bad(
                name,
                line_no,
                None,
                format!("longer than {max} bytes; skipped"),
            );
            return true;
        };
        let line = trim(line);
        if line.is_empty() {
            return false;
        }
        if first && needs_document(line) {
            let mut doc = line.to_vec();
            doc.push(b'\n');
            *document = Some((line_no, doc));
        } else {
            self.line(line, name, line_no, sink);
        }
        true
    }

    /// A whole document: one or more JSON values (Events or EventLists), pretty or not.
    fn document(&mut self, text: &[u8], name: &str, first_line: u64, sink: &mut dyn EventSink) {
        let line_at = |offset: usize| {
            first_line + memchr::memchr_iter(b'\n', &text[..offset.min(text.len())]).count() as u64
        };
        let mut stream = serde_json::Deserializer::from_slice(text).into_iter::<&RawValue>();
        loop {
            let start = stream.byte_offset();
            match stream.next() {
                None => break,
                Some(Ok(raw)) => {
                    let offset = raw.get().as_ptr() as usize - text.as_ptr() as usize;
                    self.value(raw.get().as_bytes(), name, line_at(offset), true, sink);
                }
                Some(Err(e)) => {
                    self.stats.lines += 1;
                    let at = line_at(start) + e.line().saturating_sub(1) as u64;
                    self.bad(name, at, Some(e.column()), describe(&e));
                    break;
                }
            }
        }
    }

    /// One line of JSON lines.
    fn line(&mut self, line: &[u8], name: &str, line_no: u64, sink: &mut dyn EventSink) {
        self.stats.lines += 1;
        if let Some(mut head) = EventHead::read(line) {
            // The stages `event` hands on to no sink.
            let unanalysed = match head.stage {
                "RequestReceived" => true,
                "ResponseStarted" => !is_long_running(head.subresource),
                _ => false,
            };
            if unanalysed {
                self.stats.events += 1;
                self.stats.other_stages += 1;
                return;
            }
            let f = &self.finders;
            head.unauthenticated = f.anonymous.find(line).is_some()
                || f.unauthenticated.find(line).is_some()
                || escapes_a_name(line, &f.escape);
            if !sink.wants(&head) && !moves_clock(&head, sink.open_until()) {
                self.stats.events += 1;
                if head.is_read() {
                    self.stats.reads_skipped += 1;
                } else {
                    self.stats.writes_skipped += 1;
                }
                return;
            }
        }
        self.value(line, name, line_no, false, sink);
    }

    /// One JSON value: an Event, or an EventList whose items are events.
    fn value(
        &mut self,
        text: &[u8],
        name: &str,
        line_no: u64,
        in_document: bool,
        sink: &mut dyn EventSink,
    ) {
        let event: Event = match decode(text) {
            Ok(e) => e,
            Err(e) => {
                if in_document {
                    self.stats.lines += 1;
                }
                let col = if in_document { None } else { Some(e.column()) };
                self.bad(name, line_no, col, describe(&e));
                return;
            }
        };
        if event.kind.as_deref() == Some("EventList") {
            match decode::<EventList>(text) {
                Ok(list) => {
                    for item in list.items {
                        match serde_json::from_str::<Event>(item.get()) {
                            Ok(e) => self.event(&e, name, line_no, sink),
                            Err(e) => self.bad(
                                name,
                                line_no,
                                None,
                                format!("an EventList item: {}", describe(&e)),
                            ),
                        }
                    }
                }
                Err(e) => self.bad(
                    name,
                    line_no,
                    None,
                    format!("an EventList: {}", describe(&e)),
                ),
            }
            return;
        }
        self.event(&event, name, line_no, sink);
    }

    fn event(&mut self, e: &Event<'_>, name: &str, line_no: u64, sink: &mut dyn EventSink) {
        if let Some(why) = not_audit(e) {
            self.bad(name, line_no, None, why);
            return;
        }
        self.stats.events += 1;
        // A long-running request (exec, attach, port-forward) is analysed at its first stage
        // with a response, ResponseStarted or ResponseComplete (a policy may omit either),
        // once; any other request at ResponseComplete.
        let long_running = is_long_running(e.subresource());
        match e.stage.as_deref() {
            Some("RequestReceived") => {
                self.stats.other_stages += 1;
                return;
            }
            Some("ResponseStarted") | Some("ResponseComplete") if long_running => {
                let id = e.audit_id.as_deref().unwrap_or("").to_string();
                if self.long_running.len() >= MAX_LONG_RUNNING {
                    self.long_running.clear();
                }
                if !id.is_empty() && !self.long_running.insert(id) {
                    self.stats.other_stages += 1;
                    return;
                }
            }
            Some("ResponseStarted") => {
                self.stats.other_stages += 1;
                return;
            }
            _ => {}
        }
        if self.opts.since.is_some() || self.opts.until.is_some() {
            if let Some(t) = e.timestamp() {
                let before = self.opts.since.is_some_and(|s| t < s);
                let after = self.opts.until.is_some_and(|u| t >= u);
                if before || after {
                    self.stats.out_of_range += 1;
                    return;
                }
            }
        }
        self.stats.analysed += 1;
        sink.event(
            e,
            Position {
                path: name,
                line: line_no,
            },
        );
    }
}

/// Whether an event the sink does not want would still move its clock past `open_until`
/// (see [`EventSink::open_until`]).
fn moves_clock(head: &EventHead<'_>, open_until: Option<jiff::Timestamp>) -> bool {
    let Some(until) = open_until else {
        return false;
    };
    match head.time() {
        None => true,
        Some(None) => false,
        Some(Some(t)) => t.parse::<jiff::Timestamp>().is_ok_and(|t| t >= until),
    }
}

/// Whether the line has a `\u` escape of a letter or a colon, which could spell a name the
/// finders look for (`system:anonymous`) where they do not see it. Go escapes only `&`, `<`,
/// `>` and control characters so; any other writer's such lines are decoded.
fn escapes_a_name(line: &[u8], escape: &Finder<'_>) -> bool {
    escape.find_iter(line).any(|at| {
        let hex = line
            .get(at + 4..at + 6)
            .and_then(|h| std::str::from_utf8(h).ok());
        hex.and_then(|h| u8::from_str_radix(h, 16).ok())
            .is_some_and(|c| c.is_ascii_alphabetic() || c == b':')
    })
}

/// A subresource whose requests are long-running (exec, attach, port-forward).
fn is_long_running(subresource: &str) -> bool {
    matches!(subresource, "exec" | "attach" | "portforward")
}

/// Why a decoded value is not an audit event jackstop reads, if it is not.
fn not_audit(e: &Event<'_>) -> Option<String> {
    let api = e.api_version.as_deref();
    match e.kind.as_deref() {
        Some("Event") => match api {
            None | Some("audit.k8s.io/v1") | Some("audit.k8s.io/v1beta1") => None,
            Some(a) if a.starts_with("audit.k8s.io/") => Some(format!(
                "an audit event of version {a}, which jackstop does not read (audit.k8s.io/v1, v1beta1); skipped"
            )),
            Some(a) => Some(format!(
                "a Kubernetes Event ({a}), not an audit event (audit.k8s.io/v1); skipped"
            )),
        },
        None if e.audit_id.is_some() && e.verb.is_some() => None,
        None => Some("not an audit event (no kind, auditID or verb); skipped".to_string()),
        Some(k) => Some(format!(
            "a {k}{}, not an audit event (audit.k8s.io/v1 Event); skipped",
            api.map(|a| format!(" ({a})")).unwrap_or_default()
        )),
    }
}

/// JSON text decoded, borrowing its strings. UTF-8 is checked once for the whole text, not
/// string by string and again for each raw object; text that is not UTF-8 is left to the
/// decoder to place the error.
fn decode<'a, T: Deserialize<'a>>(text: &'a [u8]) -> Result<T, serde_json::Error> {
    match std::str::from_utf8(text) {
        Ok(t) => serde_json::from_str(t),
        Err(_) => serde_json::from_slice(text),
    }
}

fn describe(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => "cut short: the JSON ends before the event does".to_string(),
        Category::Syntax => format!("not JSON ({e})"),
        Category::Data => format!("not an audit event ({e})"),
        Category::Io => format!("read error ({e})"),
    }
}

fn trim(line: &[u8]) -> &[u8] {
    let start = line
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(line.len());
    let end = line
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &line[start..end]
}

/// Whether the first line of an input opens a document that spans lines (a pretty-printed
/// EventList or Event): it starts one, and ends before it does. A first line that is a whole
/// JSON value, or garbage, is read as a line.
fn needs_document(line: &[u8]) -> bool {
    matches!(line.first(), Some(b'{' | b'['))
        && matches!(
            serde_json::from_slice::<serde::de::IgnoredAny>(line),
            Err(e) if e.classify() == serde_json::error::Category::Eof
        )
}
