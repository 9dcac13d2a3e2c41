//! EVTX files to events.
//!
//! Input: the bytes of a Windows `.evtx` file. Output: one [`Event`](super::Event) per record, in
//! record order (the evtx crate walks chunks from the oldest one, as Windows reads a log that has
//! wrapped around), with `Origin.record` = the record's `EventRecordID`; records are rendered by
//! the evtx crate (`records_json_value`, attributes under `#attributes`) and flattened by
//! [`event_from_json`](super::read::event_from_json).
//!
//! What cannot be read is reported, never fatal: a record that fails gives "record N skipped", a
//! chunk that fails gives one diagnostic for its records, a file cut inside a chunk gives the
//! records before the cut and a diagnostic for the ones after it, chunk CRC mismatches give a
//! warning. Every record the chunk headers announce is either an event or counted in `skipped`.
//! This module never panics on its input and never reorders records.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use ::evtx::err::EvtxError;
use ::evtx::{
    EvtxChunkData, EvtxChunkHeader, EvtxFileHeader, EvtxParser, ParserSettings,
    SerializedEvtxRecord,
};

use super::read::{event_from_json, ReadOutput};
use super::Origin;
use crate::diag::{Diagnostic, Location};

const FILE_MAGIC: &[u8] = b"ElfFile\0";
const CHUNK_MAGIC: &[u8] = b"ElfChnk\0";
const FILE_HEADER_SIZE: usize = 4096;
const CHUNK_SIZE: usize = 65536;
const CHUNK_HEADER_SIZE: usize = 512;
const RECORD_MAGIC: &[u8] = b"**\0\0";
const RECORD_HEADER_SIZE: usize = 24;
/// After this many record-level diagnostics, the rest of a file's are counted in one.
const MAX_RECORD_DIAGNOSTICS: usize = 20;
/// The chunk header's string and template offset tables.
const CHUNK_TABLES: std::ops::Range<usize> = 128..CHUNK_HEADER_SIZE;
/// More record IDs than this in one chunk header means the header is not to be trusted (a record
/// takes at least a few dozen bytes).
const MAX_RECORDS_PER_CHUNK: u64 = (CHUNK_SIZE / 24) as u64;

/// What the chunk headers say, to account for every record.
struct Chunk {
    number: u64,
    first_id: u64,
    last_id: u64,
    /// Where the chunk's free space starts (512: no records).
    free_space: u32,
    /// What fails the chunk's CRC32 check (`header`, `record data`), if anything.
    crc_failure: Option<&'static str>,
    /// Records read into events.
    read: u64,
    /// Records reported one by one as skipped.
    errors: u64,
    /// The whole chunk failed (reported once, its records counted then).
    failed: bool,
}

impl Chunk {
    /// The number of records the header announces, when it is believable.
    fn expected(&self) -> Option<u64> {
        if self.free_space as usize <= CHUNK_HEADER_SIZE || self.first_id == u64::MAX {
            return Some(0);
        }
        (self.last_id >= self.first_id)
            .then(|| self.last_id - self.first_id + 1)
            .filter(|n| *n <= MAX_RECORDS_PER_CHUNK)
    }
}

/// A slot in the file, by chunk number.
enum Slot {
    /// All zeroes: never used.
    Empty,
    /// No chunk signature: unused or overwritten space.
    NoSignature,
    /// A chunk; index into the chunk list.
    Chunk(usize),
    /// A chunk whose header does not parse.
    BadHeader,
}

struct Reader<'p> {
    path: &'p Path,
    out: ReadOutput,
    chunks: Vec<Chunk>,
    slots: Vec<Slot>,
    /// First record ID -> chunk index.
    by_first_id: BTreeMap<u64, usize>,
    /// Chunks the file header declares.
    declared_chunks: u64,
    /// Record-level diagnostics so far, and those past the limit, summarised at the end.
    record_diagnostics: usize,
    unreported: usize,
    /// The chunk the file ends inside, the bytes of it that are there, and the IDs of the records
    /// that lie wholly before the cut (the rest was padded with zeroes and must not be trusted).
    cut: Option<Cut>,
}

struct Cut {
    number: u64,
    len: usize,
    /// End of the last whole record, within the chunk.
    whole_end: usize,
    whole_ids: std::collections::HashSet<u64>,
}

impl Cut {
    /// The records of a cut chunk that lie wholly before the cut, walking record headers.
    fn new(number: u64, chunk: &[u8], len: usize) -> Cut {
        let mut whole_ids = std::collections::HashSet::new();
        let mut off = CHUNK_HEADER_SIZE;
        while off + RECORD_HEADER_SIZE <= len {
            let Some(head) = chunk.get(off..off + RECORD_HEADER_SIZE) else {
                break;
            };
            if !head.starts_with(RECORD_MAGIC) {
                break;
            }
            let size = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
            let id = u64::from_le_bytes([
                head[8], head[9], head[10], head[11], head[12], head[13], head[14], head[15],
            ]);
            if size < RECORD_HEADER_SIZE || off + size > len {
                break;
            }
            whole_ids.insert(id);
            off += size;
        }
        Cut {
            number,
            len,
            whole_end: off,
            whole_ids,
        }
    }
}

/// Reads EVTX bytes; see the module documentation.
pub(super) fn read(mut bytes: Vec<u8>, path: &Path, input: usize) -> ReadOutput {
    let mut r = Reader {
        path,
        out: ReadOutput::default(),
        chunks: Vec::new(),
        slots: Vec::new(),
        by_first_id: BTreeMap::new(),
        declared_chunks: 0,
        record_diagnostics: 0,
        unreported: 0,
        cut: None,
    };
    if !bytes.starts_with(FILE_MAGIC) {
        r.error(
            "not an EVTX file: it does not start with the `ElfFile` signature; nothing was read",
        );
        return r.out;
    }
    if bytes.len() < FILE_HEADER_SIZE {
        r.error(format!(
            "the file ends inside the EVTX file header ({} of {FILE_HEADER_SIZE} bytes); nothing was read",
            bytes.len()
        ));
        return r.out;
    }
    match EvtxFileHeader::from_bytes(&bytes) {
        Ok(h) => {
            r.declared_chunks = u64::from(h.chunk_count);
            if !h.validate_checksum() {
                r.warning("the EVTX file header fails its CRC32 check; reading the chunks anyway");
            }
        }
        Err(e) => {
            r.error(format!(
                "the EVTX file header cannot be read: {}",
                chain(&e)
            ));
            return r.out;
        }
    }

    // A file cut inside a chunk: pad that chunk with zeroes so the records before the cut are
    // read (the evtx crate ignores an incomplete last chunk).
    let body = bytes.len() - FILE_HEADER_SIZE;
    let (whole, rest) = (body / CHUNK_SIZE, body % CHUNK_SIZE);
    if rest > 0 {
        let start = FILE_HEADER_SIZE + whole * CHUNK_SIZE;
        if bytes
            .get(start..)
            .is_some_and(|t| t.starts_with(CHUNK_MAGIC))
        {
            bytes.resize(start + CHUNK_SIZE, 0);
            let chunk = bytes.get(start..).unwrap_or_default();
            r.cut = Some(Cut::new(whole as u64, chunk, rest));
        } else {
            let what = if bytes
                .get(start..)
                .is_some_and(|t| t.iter().any(|b| *b != 0))
            {
                "are not a chunk"
            } else {
                "are zeroes (unused space)"
            };
            r.warning(format!(
                "the file does not end on a chunk boundary (it looks cut short): the last {rest} \
bytes {what} and were ignored"
            ));
        }
    }
    let present = whole as u64 + u64::from(r.cut.is_some());
    if r.declared_chunks > present {
        r.error(format!(
            "the file header declares {} chunks but the file holds {present}: it was cut short, and \
the records of the missing chunks are lost (how many is not known)",
            r.declared_chunks
        ));
    }
    r.survey(&bytes);

    // One thread: records come out in order whatever the caller's thread pool, and a caller
    // already inside a rayon pool is not blocked on it.
    let settings = Arc::new(
        ParserSettings::new()
            .num_threads(1)
            .separate_json_attributes(false)
            .validate_checksums(false),
    );
    let parser = EvtxParser::from_read_seek(Cursor::new(&bytes[..]));
    let mut parser = match parser {
        Ok(p) => p.with_configuration((*settings).clone()),
        Err(e) => {
            r.error(format!("the EVTX file cannot be read: {}", chain(&e)));
            return r.out;
        }
    };
    for rec in parser.records_json_value() {
        match rec {
            Ok(rec) => r.emit(rec, input),
            Err(EvtxError::FailedToParseChunk { chunk_id, source }) => {
                let reason = chain(source.as_ref());
                if !r.retry_chunk(&bytes, chunk_id, input, &settings, &reason) {
                    r.chunk_error(chunk_id, &reason);
                }
            }
            Err(e) => r.record_error(&e),
        }
    }
    r.account();
    r.out
}

impl Reader<'_> {
    /// One rendered record to an event.
    fn emit(&mut self, rec: SerializedEvtxRecord<serde_json::Value>, input: usize) {
        if self.past_cut(rec.event_record_id) {
            // Rendered from the zeroes padding a cut chunk: not what the sensor wrote.
            return;
        }
        let mut ev = event_from_json(&rec.data);
        ev.origin = Origin {
            input,
            record: rec.event_record_id,
        };
        if let Some(c) = self.chunk_of(rec.event_record_id) {
            c.read += 1;
        }
        self.out.events.push(ev);
    }

    /// A chunk whose header tables (string and template offsets, only caches of what the records
    /// hold) are damaged fails as a whole; read it again without them. Returns whether any record
    /// was read that way.
    fn retry_chunk(
        &mut self,
        bytes: &[u8],
        number: u64,
        input: usize,
        settings: &Arc<ParserSettings>,
        reason: &str,
    ) -> bool {
        if !matches!(self.slots.get(number as usize), Some(Slot::Chunk(_))) {
            return false;
        }
        let start = FILE_HEADER_SIZE + number as usize * CHUNK_SIZE;
        let Some(data) = bytes.get(start..start + CHUNK_SIZE) else {
            return false;
        };
        let mut copy = data.to_vec();
        if let Some(tables) = copy.get_mut(CHUNK_TABLES) {
            tables.fill(0);
        }
        let Ok(mut chunk_data) = EvtxChunkData::new(copy, false) else {
            return false;
        };
        chunk_data.number = Some(number);
        let Ok(mut chunk) = chunk_data.parse(Arc::clone(settings)) else {
            return false;
        };
        let mut read = 0;
        let mut errors = Vec::new();
        for rec in chunk.iter() {
            match rec.and_then(|r| r.into_json_value()) {
                Ok(rec) => {
                    self.emit(rec, input);
                    read += 1;
                }
                Err(e) => errors.push(e),
            }
        }
        if read == 0 {
            return false;
        }
        self.warning(format!(
            "chunk {number} failed as a whole ({reason}); read again without its header's string \
and template tables, {read} of its records were read"
        ));
        for e in &errors {
            self.record_error(e);
        }
        true
    }

    fn error(&mut self, message: impl Into<String>) {
        self.out
            .diagnostics
            .push(Diagnostic::error(Location::file(self.path), message));
    }

    /// A record-level error: listed up to a limit, then counted.
    fn record_diag(&mut self, message: String) {
        if self.record_diagnostics < MAX_RECORD_DIAGNOSTICS {
            self.record_diagnostics += 1;
            self.error(message);
        } else {
            self.unreported += 1;
        }
    }

    fn warning(&mut self, message: impl Into<String>) {
        self.out
            .diagnostics
            .push(Diagnostic::warning(Location::file(self.path), message));
    }

    /// Whether record `id` belongs to the cut chunk but does not lie wholly before the cut.
    fn past_cut(&mut self, id: u64) -> bool {
        let Some(cut) = &self.cut else {
            return false;
        };
        let (number, whole) = (cut.number, cut.whole_ids.contains(&id));
        !whole && self.chunk_of(id).is_some_and(|c| c.number == number)
    }

    /// Reads every chunk header: record ID ranges for the accounting, CRC checks.
    fn survey(&mut self, bytes: &[u8]) {
        let cut = self.cut.as_ref().map(|c| c.number);
        let count = (bytes.len() - FILE_HEADER_SIZE) / CHUNK_SIZE;
        for i in 0..count {
            let start = FILE_HEADER_SIZE + i * CHUNK_SIZE;
            let Some(data) = bytes.get(start..start + CHUNK_SIZE) else {
                break;
            };
            let slot = if data.iter().all(|b| *b == 0) {
                Slot::Empty
            } else if !data.starts_with(CHUNK_MAGIC) {
                Slot::NoSignature
            } else {
                match EvtxChunkHeader::from_bytes(data) {
                    Ok(h) => {
                        let idx = self.chunks.len();
                        self.chunks.push(Chunk {
                            number: i as u64,
                            first_id: h.first_event_record_id,
                            last_id: h.last_event_record_id,
                            free_space: h.free_space_offset,
                            crc_failure: None,
                            read: 0,
                            errors: 0,
                            failed: false,
                        });
                        if h.free_space_offset as usize > CHUNK_HEADER_SIZE {
                            self.by_first_id.insert(h.first_event_record_id, idx);
                        }
                        if cut != Some(i as u64) {
                            if let Some(c) = self.chunks.last_mut() {
                                c.crc_failure = Self::crc_failure(data);
                            }
                        }
                        Slot::Chunk(idx)
                    }
                    Err(_) => Slot::BadHeader,
                }
            };
            self.slots.push(slot);
        }
    }

    /// What fails its CRC32 check in a chunk, if anything.
    fn crc_failure(data: &[u8]) -> Option<&'static str> {
        let chunk = EvtxChunkData::new(data.to_vec(), false).ok()?;
        if !chunk.validate_header_checksum() {
            Some("header")
        } else if !chunk.validate_data_checksum() {
            Some("record data")
        } else {
            None
        }
    }

    /// The chunk that holds record `id`, by the chunk headers.
    fn chunk_of(&mut self, id: u64) -> Option<&mut Chunk> {
        let (_, &idx) = self.by_first_id.range(..=id).next_back()?;
        self.chunks.get_mut(idx).filter(|c| id <= c.last_id)
    }

    fn chunk_at(&mut self, number: u64) -> Option<&mut Chunk> {
        match self.slots.get(number as usize) {
            Some(Slot::Chunk(idx)) => self.chunks.get_mut(*idx),
            _ => None,
        }
    }

    fn record_error(&mut self, e: &EvtxError) {
        match e {
            EvtxError::FailedToParseChunk { chunk_id, source } => {
                self.chunk_error(*chunk_id, &chain(source.as_ref()));
            }
            EvtxError::FailedToParseRecord { record_id, .. } if self.past_cut(*record_id) => {
                // Counted with the cut chunk's missing records.
            }
            EvtxError::FailedToReadRecordAt {
                chunk: Some(n),
                offset,
                ..
            } if self
                .cut
                .as_ref()
                .is_some_and(|c| c.number == *n && *offset as usize >= c.whole_end) => {}
            EvtxError::FailedToParseRecord { record_id, source } => {
                self.out.skipped += 1;
                if let Some(c) = self.chunk_of(*record_id) {
                    c.errors += 1;
                }
                self.record_diag(format!(
                    "record {record_id} skipped: {}",
                    chain(source.as_ref())
                ));
            }
            EvtxError::FailedToReadRecordAt {
                chunk,
                offset,
                source,
            } => {
                self.out.skipped += 1;
                let place = match chunk {
                    Some(n) => {
                        if let Some(c) = self.chunk_at(*n) {
                            c.errors += 1;
                        }
                        format!("chunk {n}, offset {offset:#x}")
                    }
                    None => format!("offset {offset:#x} of its chunk"),
                };
                self.record_diag(format!(
                    "record at {place} skipped: {}",
                    chain(source.as_ref())
                ));
            }
            other => {
                self.out.skipped += 1;
                self.record_diag(format!("record skipped: {}", chain(other)));
            }
        }
    }

    fn chunk_error(&mut self, number: u64, reason: &str) {
        let declared = self.declared_chunks;
        match self.slots.get(number as usize) {
            Some(Slot::NoSignature) if number >= declared => self.warning(format!(
                "chunk {number} has no chunk signature and lies past the {declared} chunk(s) the \
file header declares: unused space, skipped"
            )),
            Some(Slot::NoSignature) => self.error(format!(
                "chunk {number} has no chunk signature (overwritten?): its records, if any, were \
not read"
            )),
            Some(Slot::Chunk(idx)) => {
                let idx = *idx;
                let (range, lost) = match self.chunks.get_mut(idx) {
                    Some(c) => {
                        c.failed = true;
                        let lost = c.expected().map(|n| n.saturating_sub(c.read + c.errors));
                        (
                            format!(" (record IDs {}..={})", c.first_id, c.last_id),
                            lost,
                        )
                    }
                    None => (String::new(), None),
                };
                let count = match lost {
                    Some(n) => {
                        self.out.skipped += n as usize;
                        format!("{n} records")
                    }
                    None => "its records".to_string(),
                };
                self.error(format!(
                    "chunk {number}{range} could not be read, {count} skipped: {reason}"
                ));
            }
            _ => self.error(format!(
                "chunk {number} could not be read, its records skipped: {reason}"
            )),
        }
    }

    /// Every record a chunk header announces is an event or was reported; report the rest.
    fn account(&mut self) {
        let cut = self.cut.as_ref().map(|c| (c.number, c.len));
        let mut notes = Vec::new();
        let mut crc = Vec::new();
        for c in &self.chunks {
            if c.failed {
                continue;
            }
            if let Some(what) = c.crc_failure {
                crc.push(format!(
                    "chunk {}: its {what} fail(s) the CRC32 check; the {} records read from it may hold damaged values",
                    c.number, c.read
                ));
            }
            let Some(expected) = c.expected() else {
                continue;
            };
            let missing = expected.saturating_sub(c.read + c.errors);
            let is_cut = cut.is_some_and(|(n, _)| n == c.number);
            if missing > 0 || is_cut {
                notes.push((c.number, expected, missing, c.first_id, c.last_id, is_cut));
            }
        }
        for (number, expected, missing, first, last, is_cut) in notes {
            self.out.skipped += missing as usize;
            let lost = if missing == 0 {
                format!("all {expected} records it holds (IDs {first}..={last}) come before the cut and were read")
            } else {
                format!(
                    "{missing} of the {expected} records it holds (IDs {first}..={last}) were not read"
                )
            };
            match (is_cut, cut) {
                (true, Some((_, rest))) => {
                    let msg = format!(
                        "the file ends inside chunk {number} (after {rest} of its {CHUNK_SIZE} bytes): {lost}"
                    );
                    if missing > 0 {
                        self.error(msg);
                    } else {
                        self.warning(msg);
                    }
                }
                _ => self.error(format!("chunk {number}: {lost}")),
            }
        }
        for m in crc {
            self.warning(m);
        }
        if self.unreported > 0 {
            let n = self.unreported;
            self.error(format!(
                "{n} more records were skipped (not listed one by one)"
            ));
        }
        // A cut chunk whose header did not parse.
        if let Some((number, rest)) = cut {
            if !matches!(self.slots.get(number as usize), Some(Slot::Chunk(_))) {
                self.error(format!(
                    "the file ends inside chunk {number} (after {rest} of its {CHUNK_SIZE} bytes): its records were not read"
                ));
            }
        }
    }
}

/// An error and its causes, `: `-separated, without repeats.
/// The evtx crate's messages that only say which layer failed, left out when a cause follows.
fn is_generic(message: &str) -> bool {
    message.starts_with("An error occurred while trying to")
        || message.starts_with("Failed to parse chunk number")
        || message.starts_with("Failed to parse record number")
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(e);
    while let Some(c) = cur {
        let m = c.to_string();
        let m = m.trim_end_matches('.').to_string();
        let wanted = c.source().is_none() || !is_generic(&m);
        if wanted && !parts.iter().any(|p| p.contains(&m)) {
            parts.push(m);
        }
        cur = c.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Severity;
    use proptest::prelude::*;
    use std::path::PathBuf;

    fn p() -> PathBuf {
        PathBuf::from("x.evtx")
    }

    #[test]
    fn not_evtx() {
        for b in [&b""[..], b"ElfFil", b"{\"a\": 1}", b"ElfFile\0short"] {
            let out = read(b.to_vec(), &p(), 0);
            assert!(out.events.is_empty());
            assert_eq!(out.diagnostics.len(), 1, "{:?}", out.diagnostics);
            assert_eq!(out.diagnostics[0].severity, Severity::Error);
            assert!(out.diagnostics[0]
                .to_string()
                .starts_with("x.evtx: error: "));
        }
    }

    /// A file header with a valid signature and no chunks.
    fn header_only() -> Vec<u8> {
        let mut b = vec![0u8; FILE_HEADER_SIZE];
        b[..8].copy_from_slice(FILE_MAGIC);
        b[32..36].copy_from_slice(&128u32.to_le_bytes());
        b[36..38].copy_from_slice(&1u16.to_le_bytes());
        b[38..40].copy_from_slice(&3u16.to_le_bytes());
        b[40..42].copy_from_slice(&4096u16.to_le_bytes());
        b
    }

    #[test]
    fn header_only_file_has_no_records() {
        let out = read(header_only(), &p(), 0);
        assert!(out.events.is_empty());
        assert!(out
            .diagnostics
            .iter()
            .all(|d| d.severity == Severity::Warning));
    }

    #[test]
    fn garbage_chunk_is_reported_not_fatal() {
        let mut b = header_only();
        let mut chunk = vec![0xA5u8; CHUNK_SIZE];
        chunk[..8].copy_from_slice(CHUNK_MAGIC);
        b.extend_from_slice(&chunk);
        b.extend_from_slice(&vec![0x5Au8; CHUNK_SIZE]);
        b.extend_from_slice(&chunk[..1000]);
        let out = read(b, &p(), 0);
        assert!(out.events.is_empty());
        assert!(!out.diagnostics.is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        #[test]
        fn random_chunks_never_panic(
            body in proptest::collection::vec(any::<u8>(), 0..3000),
            fill in any::<u8>(),
            len in 0usize..(2 * CHUNK_SIZE),
        ) {
            let mut b = header_only();
            let mut chunk = vec![fill; len];
            if chunk.len() >= 8 {
                chunk[..8].copy_from_slice(CHUNK_MAGIC);
            }
            for (i, x) in body.iter().enumerate() {
                if let Some(slot) = chunk.get_mut(8 + i * 7) {
                    *slot = *x;
                }
            }
            b.extend_from_slice(&chunk);
            let _ = read(b, &p(), 0);
        }
    }
}
