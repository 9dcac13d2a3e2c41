//! Zip archives of recordings (Security-Datasets ships zipped JSON Lines and audit logs): each member
//! is read as if it were a file of its own.

use super::read::ReadOutput;
use crate::diag::{Diagnostic, Location};
use std::path::Path;

/// Reads every member of a zip archive.
pub fn read_zip(_bytes: &[u8], path: &Path, _input: usize) -> ReadOutput {
    ReadOutput {
        diagnostics: vec![Diagnostic::error(
            Location::file(path),
            "zip archives are not read yet",
        )],
        ..ReadOutput::default()
    }
}
