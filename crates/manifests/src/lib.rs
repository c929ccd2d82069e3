//! Manifest input: turns files, directories and stdin into [`Object`]s that remember their file
//! and line, and into [`InputError`]s for whatever could not be read.
//!
//! Why it is built this way:
//! - A YAML stream is cut into documents at `---` lines before parsing ([`documents`]), so that a
//!   syntax error in one document loses only that document, and documents of one large file
//!   (a rendered Kubeflow install is 12 MB in one stream) parse in parallel.
//! - Each document is parsed by serde-saphyr into a tree that carries the line of every key
//!   ([`located`]); that tree becomes JSON plus a field-to-line table only for the kinds the
//!   analysers asked for, so memory follows what is analysed, not what is read.
//! - Parsing is bounded: serde-saphyr's budget caps events, nodes, depth and alias expansion
//!   (billion laughs), and files above a size limit are refused with an error entry.

pub mod documents;
pub mod error;
pub mod located;
pub mod reader;
pub mod walk;

pub use error::ManifestError;
pub use reader::{read_inputs, KindFilter, ManifestSet, ReadOptions};
pub use walk::{collect_inputs, Input};
