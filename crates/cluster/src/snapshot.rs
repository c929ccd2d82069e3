//! `--save FILE`: what a cluster scan read, as one `kind: List` document that `jackstop scan
//! FILE` reads back into the same objects (the same findings), for a security team offline.

use jackstop_core::Object;
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;

/// The objects as a `v1` `List` (JSON, which every YAML reader also reads).
pub fn to_list(objects: &[Object]) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {"resourceVersion": ""},
        "items": objects.iter().map(|o| o.body.clone()).collect::<Vec<_>>(),
    })
}

/// Writes the snapshot to `path` (pretty-printed, one field per line, so that findings on the
/// saved file point at useful lines).
pub fn save(objects: &[Object], path: &Path) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    serde_json::to_writer_pretty(&mut f, &to_list(objects))?;
    f.write_all(b"\n")?;
    f.flush()
}
