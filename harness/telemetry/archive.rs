//! Zip archives of recordings (Security-Datasets ships zipped JSON Lines and audit logs): each member
//! is read as if it were a file of its own.
//!
//! Input: the bytes of a zip archive and its path. Output: the events of every file member, in
//! member order, read by [`read_text_any`](super::read::read_text_any) (JSON, JSON Lines, event
//! XML, audit logs) or, for an EVTX member, by the EVTX reader; diagnostics name the member as
//! `<archive path>!/<member name>`. It never extracts anything to disk, never follows a nested
//! archive (reported and skipped), and never decompresses more than the limits below (zip bombs):
//! a member over [`MAX_MEMBER_BYTES`], members past [`MAX_MEMBERS`], or data past
//! [`MAX_TOTAL_BYTES`] are reported and skipped.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::read::ReadOutput;
use crate::diag::{Diagnostic, Location};

/// Largest member read, uncompressed.
pub const MAX_MEMBER_BYTES: u64 = 512 << 20;
/// Most members read from one archive.
pub const MAX_MEMBERS: usize = 10_000;
/// Most bytes decompressed from one archive, all members together.
pub const MAX_TOTAL_BYTES: u64 = 4 << 30;

/// The limits one archive is read under.
#[derive(Debug, Clone, Copy)]
struct Limits {
    member_bytes: u64,
    members: usize,
    total_bytes: u64,
}

const LIMITS: Limits = Limits {
    member_bytes: MAX_MEMBER_BYTES,
    members: MAX_MEMBERS,
    total_bytes: MAX_TOTAL_BYTES,
};

/// Reads every file member of a zip archive (directories and symbolic links are skipped). Members are decoded as
/// UTF-8 (a byte-order mark is allowed) or UTF-16 with a byte-order mark; an EVTX member is read as
/// EVTX. A corrupt archive gives one error naming the file.
pub fn read_zip(bytes: &[u8], path: &Path, input: usize) -> ReadOutput {
    read_zip_with(bytes, path, input, LIMITS)
}

fn read_zip_with(bytes: &[u8], path: &Path, input: usize, limits: Limits) -> ReadOutput {
    let mut out = ReadOutput::default();
    let mut archive = match zip::ZipArchive::new(std::io::Cursor::new(bytes)) {
        Ok(a) => a,
        Err(e) => {
            out.diagnostics.push(
                Diagnostic::error(
                    Location::file(path),
                    format!("the zip archive cannot be read ({e}); nothing was read"),
                )
                .with_help("check that the file is a complete zip archive (a truncated download looks like this)"),
            );
            return out;
        }
    };
    let count = archive.len();
    if count > limits.members {
        out.diagnostics.push(Diagnostic::error(
            Location::file(path),
            format!(
                "the zip archive has {count} members; only the first {} were read",
                limits.members
            ),
        ));
    }
    let mut total: u64 = 0;
    for index in 0..count.min(limits.members) {
        let listed_name = archive
            .name_for_index(index)
            .and_then(|n| n.ok())
            .map_or_else(|| format!("#{index}"), |n| n.into_owned());
        let mut file = match archive.by_index(index) {
            Ok(f) => f,
            Err(e) => {
                let name = listed_name;
                out.diagnostics.push(Diagnostic::error(
                    Location::file(member_path(path, &name)),
                    format!("this zip member cannot be read ({e}); it was skipped"),
                ));
                continue;
            }
        };
        // Directories hold nothing; a symbolic link's data is its target's name.
        if file.is_dir() || file.is_symlink() {
            continue;
        }
        let name = match file.name() {
            Ok(n) => n.into_owned(),
            Err(_) => String::from_utf8_lossy(file.name_raw()).into_owned(),
        };
        let mpath = member_path(path, &name);
        let skip = |out: &mut ReadOutput, message: String| {
            out.diagnostics
                .push(Diagnostic::error(Location::file(&mpath), message));
        };
        if file.encrypted() {
            skip(
                &mut out,
                "this zip member is encrypted; it was skipped".to_string(),
            );
            continue;
        }
        let declared = file.size();
        if declared > limits.member_bytes {
            skip(
                &mut out,
                format!(
                    "this zip member is {declared} bytes uncompressed, over the {} byte limit; it was skipped",
                    limits.member_bytes
                ),
            );
            continue;
        }
        let budget = limits
            .member_bytes
            .min(limits.total_bytes.saturating_sub(total));
        // The declared size may lie: read at most one byte past the budget to find out.
        // Reserve what the member declares, up to 64 MiB (a declared size is only a claim).
        let reserve = declared.min(budget).min(64 << 20);
        let mut data = Vec::with_capacity(usize::try_from(reserve).unwrap_or(0));
        if let Err(e) = (&mut file).take(budget + 1).read_to_end(&mut data) {
            skip(
                &mut out,
                format!("this zip member cannot be decompressed ({e}); it was skipped"),
            );
            continue;
        }
        let read = data.len() as u64;
        if read > budget {
            let message = if budget < limits.member_bytes {
                format!(
                    "reading this zip member would take the archive past {} decompressed bytes; it and the members after it were skipped",
                    limits.total_bytes
                )
            } else {
                format!(
                    "this zip member decompresses to more than {} bytes; it was skipped",
                    limits.member_bytes
                )
            };
            skip(&mut out, message);
            if budget < limits.member_bytes {
                break;
            }
            continue;
        }
        total += read;
        drop(file);
        let mut part = read_member(data, &mpath, input);
        out.events.append(&mut part.events);
        out.diagnostics.append(&mut part.diagnostics);
        out.skipped += part.skipped;
    }
    out
}

/// `<archive>!/<member>`, the name a member has in diagnostics.
fn member_path(archive: &Path, member: &str) -> PathBuf {
    PathBuf::from(format!("{}!/{member}", archive.display()))
}

/// Reads one member's bytes by their content.
fn read_member(data: Vec<u8>, path: &Path, input: usize) -> ReadOutput {
    if data.starts_with(b"PK\x03\x04") {
        return failed(
            path,
            "this member is itself a zip archive; nested archives are not read, it was skipped",
        );
    }
    if data.starts_with(b"ElfFile\0") {
        return super::read::read_evtx_bytes(data, path, input);
    }
    const COMPRESSED: &[(&[u8], &str)] = &[
        (b"\x1f\x8b", "gzip file"),
        (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
        (b"\xfd7zXZ\x00", "xz file"),
        (b"BZh", "bzip2 file"),
        (b"\x28\xb5\x2f\xfd", "zstd file"),
    ];
    if let Some((_, kind)) = COMPRESSED.iter().find(|(m, _)| data.starts_with(m)) {
        return failed(
            path,
            &format!(
                "this member is a {kind}, which is not read inside a zip archive; it was skipped"
            ),
        );
    }
    let mut diagnostics = Vec::new();
    let text = match decode(data) {
        Ok(t) => t,
        Err(Undecodable::Utf16) => {
            return failed(
                path,
                "this member starts with a UTF-16 byte-order mark but is not valid UTF-16; it was skipped",
            )
        }
        Err(Undecodable::Utf8 { line, text }) => {
            diagnostics.push(Diagnostic::error(
                Location::new(path, line, 0),
                "bytes that are not UTF-8 (text members must be UTF-8, or UTF-16 with a byte-order mark); they were replaced by U+FFFD",
            ));
            text
        }
    };
    let mut out = super::read::read_text_any(&text, path, input);
    out.diagnostics.splice(0..0, diagnostics);
    out
}

fn failed(path: &Path, message: &str) -> ReadOutput {
    ReadOutput {
        diagnostics: vec![Diagnostic::error(Location::file(path), message)],
        ..ReadOutput::default()
    }
}

enum Undecodable {
    /// Invalid UTF-8 first at this 1-based line; the text with the bad bytes replaced.
    Utf8 {
        line: usize,
        text: String,
    },
    Utf16,
}

/// UTF-8 (BOM left for the text reader to strip) or UTF-16 with a BOM.
fn decode(data: Vec<u8>) -> Result<String, Undecodable> {
    let utf16 = |le: bool| {
        let units: Vec<u16> = data[2..]
            .chunks(2)
            .map(|c| match c {
                [a, b] if le => u16::from_le_bytes([*a, *b]),
                [a, b] => u16::from_be_bytes([*a, *b]),
                // An odd trailing byte cannot be a UTF-16 unit.
                _ => 0xDC00,
            })
            .collect();
        String::from_utf16(&units).map_err(|_| Undecodable::Utf16)
    };
    if data.starts_with(&[0xFF, 0xFE]) {
        return utf16(true);
    }
    if data.starts_with(&[0xFE, 0xFF]) {
        return utf16(false);
    }
    String::from_utf8(data).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let bytes = e.into_bytes();
        let line = 1 + memchr::memchr_iter(b'\n', &bytes[..valid]).count();
        Undecodable::Utf8 {
            line,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Severity;
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, data) in members {
            if let Some(dir) = name.strip_suffix('/') {
                w.add_directory(dir, SimpleFileOptions::default()).unwrap();
                continue;
            }
            if let Some(link) = name.strip_prefix('@') {
                let target = std::str::from_utf8(data).unwrap();
                w.add_symlink(link, target, SimpleFileOptions::default())
                    .unwrap();
                continue;
            }
            w.start_file(
                *name,
                SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated),
            )
            .unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    fn errors(out: &ReadOutput) -> Vec<String> {
        out.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| d.to_string())
            .collect()
    }

    #[test]
    fn members_are_read_in_order_with_their_names() {
        let audit = b"type=EXECVE msg=audit(1.000:7): argc=1 a0=\"id\"\n";
        let bytes = zip_of(&[
            ("d/", b""),
            ("@d/link.json", b"d/a.jsonl"),
            (
                "d/a.jsonl",
                b"{\"EventID\": 1, \"Channel\": \"c\"}\n{\"EventID\": 2,}\n",
            ),
            ("d/b.log", audit),
        ]);
        let out = read_zip(&bytes, Path::new("x.zip"), 3);
        assert_eq!(out.events.len(), 2);
        assert_eq!(out.events[0].event_id(), Some(1));
        assert_eq!(out.events[1].sensor.as_deref(), Some("auditd"));
        assert_eq!(out.events[1].origin.input, 3);
        assert_eq!(out.skipped, 1);
        let e = errors(&out);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("x.zip!/d/a.jsonl:2:"), "{}", e[0]);
    }

    #[test]
    fn bom_and_utf16_members() {
        let mut u16le = vec![0xFF, 0xFE];
        for u in "{\"a\": \"é\"}\n".encode_utf16() {
            u16le.extend(u.to_le_bytes());
        }
        let mut u16be = vec![0xFE, 0xFF];
        for u in "type=CWD msg=audit(1.000:1): cwd=\"/é\"\n".encode_utf16() {
            u16be.extend(u.to_be_bytes());
        }
        let bytes = zip_of(&[
            ("bom.json", b"\xEF\xBB\xBF{\"a\": 1}"),
            ("le.json", &u16le),
            ("be.log", &u16be),
            ("bad16.json", b"\xFF\xFE\x00\xD8"),
            ("bad8.json", b"{\"a\": 2}\n{\"a\": \"\xff\"}\n"),
        ]);
        let out = read_zip(&bytes, Path::new("x.zip"), 0);
        let a: Vec<_> = out.events.iter().map(|e| e.get("a").cloned()).collect();
        use crate::telemetry::Value;
        assert_eq!(a[0], Some(Value::Int(1)));
        assert_eq!(a[1], Some(Value::Str("é".into())));
        assert_eq!(out.events[2].get("cwd"), Some(&Value::Str("/é".into())));
        assert_eq!(a[3], Some(Value::Int(2)));
        assert_eq!(out.events.len(), 5);
        let e = errors(&out);
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("x.zip!/bad16.json: error:") && e[0].contains("UTF-16"));
        assert!(e[1].starts_with("x.zip!/bad8.json:2: error:") && e[1].contains("UTF-8"));
    }

    #[test]
    fn nested_and_compressed_members_are_skipped() {
        let inner = zip_of(&[("a.json", b"{}")]);
        let bytes = zip_of(&[
            ("inner.zip", &inner),
            ("x.gz", b"\x1f\x8b\x08rest"),
            ("ok.json", b"{\"a\": 1}"),
        ]);
        let out = read_zip(&bytes, Path::new("x.zip"), 0);
        assert_eq!(out.events.len(), 1);
        let e = errors(&out);
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].contains("x.zip!/inner.zip") && e[0].contains("nested"));
        assert!(e[1].contains("x.zip!/x.gz") && e[1].contains("gzip"));
    }

    #[test]
    fn corrupt_archives_name_the_file() {
        for bytes in [&b"PK\x03\x04rest"[..], b"", b"PK\x05\x06"] {
            let out = read_zip(bytes, Path::new("bad.zip"), 0);
            assert!(out.events.is_empty());
            assert_eq!(out.diagnostics.len(), 1);
            let d = out.diagnostics[0].to_string();
            assert!(d.starts_with("bad.zip: error:") && d.contains("zip"), "{d}");
        }
        // A member whose compressed data is damaged.
        let mut bytes = zip_of(&[("a.json", &[b'{'; 4000][..]), ("b.json", b"{\"b\": 1}")]);
        let at = bytes
            .windows(6)
            .position(|w| w == b"a.json")
            .map(|i| i + 6 + 10)
            .unwrap();
        for b in &mut bytes[at..at + 8] {
            *b ^= 0x55;
        }
        let out = read_zip(&bytes, Path::new("bad.zip"), 0);
        assert!(
            out.diagnostics
                .iter()
                .any(|d| d.to_string().starts_with("bad.zip!/a.json")),
            "{:?}",
            out.diagnostics
        );
        assert_eq!(
            out.events.last().and_then(|e| e.get("b")).cloned(),
            Some(crate::telemetry::Value::Int(1))
        );
    }

    #[test]
    fn limits_stop_zip_bombs() {
        let big = vec![b' '; 10_000];
        let bytes = zip_of(&[
            ("a.json", b"{\"a\": 1}"),
            ("big.json", &big),
            ("c.json", b"{\"c\": 1}"),
            ("d.json", b"{\"d\": 1}"),
        ]);
        let tight = Limits {
            member_bytes: 1000,
            members: 3,
            total_bytes: 1 << 20,
        };
        let out = read_zip_with(&bytes, Path::new("x.zip"), 0, tight);
        assert_eq!(out.events.len(), 2, "a and c");
        let e = errors(&out);
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].contains("4 members") && e[0].contains("first 3"));
        assert!(e[1].contains("x.zip!/big.json") && e[1].contains("1000 byte limit"));

        let total = Limits {
            member_bytes: 1 << 20,
            members: 100,
            total_bytes: 5_000,
        };
        let out = read_zip_with(&bytes, Path::new("x.zip"), 0, total);
        assert_eq!(out.events.len(), 1, "only a");
        let e = errors(&out);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("x.zip!/big.json") && e[0].contains("5000 decompressed bytes"));
    }

    #[test]
    fn a_lying_declared_size_never_yields_the_whole_member() {
        let data = format!("{{\"a\": \"{}\"}}", "x".repeat(2_000));
        let mut bytes = zip_of(&[("a.json", data.as_bytes())]);
        // The central directory entry's uncompressed size (offset 24) claims 10 bytes.
        let cd = bytes.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        bytes[cd + 24..cd + 28].copy_from_slice(&10u32.to_le_bytes());
        let limits = Limits {
            member_bytes: 1_000,
            members: 10,
            total_bytes: 1 << 20,
        };
        let out = read_zip_with(&bytes, Path::new("x.zip"), 0, limits);
        assert!(out.events.is_empty());
        let e = errors(&out);
        assert!(e.iter().any(|d| d.starts_with("x.zip!/a.json")), "{e:?}");
    }
}
