use jackstop_core::InputError;
use thiserror::Error;

/// Why one input, or one document of it, could not be read.
#[derive(Debug, Error)]
pub enum ManifestError {
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error("file is {size} bytes, over the {limit}-byte limit (raise it with --max-file-size)")]
    TooLarge { size: u64, limit: u64 },
    #[error("binary file (NUL byte at offset {offset}), not YAML or JSON")]
    Binary { offset: usize },
    #[error("not valid UTF-8 (first bad byte at offset {offset})")]
    NotUtf8 { offset: usize, line: u32 },
    #[error("invalid YAML: {message}")]
    Yaml {
        message: String,
        line: Option<u32>,
        column: Option<u32>,
    },
    #[error("invalid JSON: {message}")]
    Json {
        message: String,
        line: u32,
        column: u32,
    },
    #[error("{kind} has no metadata.name or metadata.generateName")]
    Unnamed { kind: String, line: u32 },
}

impl ManifestError {
    /// The contract's `errors[]` entry for this error in `path`.
    pub fn to_input_error(&self, path: &str) -> InputError {
        let (line, column) = match self {
            ManifestError::Yaml { line, column, .. } => (*line, *column),
            ManifestError::Json { line, column, .. } => (Some(*line), Some(*column)),
            ManifestError::NotUtf8 { line, .. } => (Some(*line), None),
            ManifestError::Unnamed { line, .. } => (Some(*line), None),
            _ => (None, None),
        };
        InputError {
            path: path.to_string(),
            line,
            column,
            message: self.to_string(),
        }
    }
}
