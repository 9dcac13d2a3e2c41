//! Native record shapes: what a sensor writes, before any reader flattens it into an [`Event`].
//!
//! Scenarios are rendered through these types into the sensors' own formats (Windows event XML, the
//! evtx crate's JSON shape, raw auditd lines, Defender rows, Zeek JSON logs), and the readers parse
//! those formats back into events. See docs/scenarios.md.
//!
//! [`Event`]: super::Event

/// One Windows event log record: the `System` element and the event's data.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WinRecord {
    pub provider_name: String,
    pub provider_guid: Option<String>,
    pub event_id: u32,
    pub version: Option<u8>,
    pub level: Option<u8>,
    pub task: Option<u16>,
    pub opcode: Option<u8>,
    /// As the event log writes it: `0x8000000000000000`.
    pub keywords: Option<String>,
    /// `2026-03-14T09:26:53.1201234Z` (7 fractional digits, as EVTX renders FILETIME).
    pub time_created: String,
    pub record_id: u64,
    pub correlation_activity_id: Option<String>,
    pub correlation_related_activity_id: Option<String>,
    pub execution_pid: Option<u32>,
    pub execution_tid: Option<u32>,
    pub channel: String,
    pub computer: String,
    /// `Security UserID` (a SID), where the provider writes one.
    pub user_sid: Option<String>,
    pub data: WinData,
}

/// The data part of a Windows record.
#[derive(Debug, Clone, PartialEq)]
pub enum WinData {
    /// `<EventData><Data Name="..">..</Data>...</EventData>`, in order. Values are text, as in XML.
    EventData(Vec<(String, String)>),
    /// `<UserData><Element xmlns=".."><Field>..</Field>...</Element></UserData>`.
    UserData {
        element: String,
        xmlns: Option<String>,
        fields: Vec<(String, String)>,
    },
}

impl Default for WinData {
    fn default() -> Self {
        WinData::EventData(Vec::new())
    }
}

/// One auditd record (one line of audit.log).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuditRecord {
    /// `node=<name>` prefix, when the daemon is configured to write it.
    pub node: Option<String>,
    /// `SYSCALL`, `EXECVE`, `CWD`, `PATH`, `PROCTITLE`, `SOCKADDR`, ...
    pub record_type: String,
    /// Milliseconds since the Unix epoch (`msg=audit(1773480413.120:..)`).
    pub epoch_ms: i64,
    pub serial: u64,
    /// Key/value pairs in order.
    pub fields: Vec<(String, AuditValue)>,
}

/// How auditd writes one value.
#[derive(Debug, Clone, PartialEq)]
pub enum AuditValue {
    /// Written as is: numbers, hex numbers, keywords (`syscall=59`, `success=yes`, `key=(null)`).
    Bare(String),
    /// An untrusted string (`aN`, `name`, `exe`, `comm`, `cwd`, `key`, ...): double-quoted, or hex
    /// when it contains a double quote, a space or control character, or a byte >= 0x7f (the kernel's
    /// `audit_log_untrustedstring`).
    Untrusted(String),
    /// Always hex: binary values (`saddr`) and PROCTITLE's NUL-separated argument vector.
    Hex(Vec<u8>),
}
