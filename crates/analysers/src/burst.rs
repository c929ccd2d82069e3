//! Burst detection.
