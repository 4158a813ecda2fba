//! What identifies one version of a file, as each operating system reports it (built by the OS
//! modules, compared by the rest of the core).

/// What identifies one version of a file without reading it: the file itself (device and inode,
/// or volume and file index), its size and its times. A file replaced by rename is another file,
/// and any write changes size or times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileIdentity {
    volume: u64,
    index: u64,
    size: u64,
    modified_ns: i128,
    changed_ns: i128,
}

impl FileIdentity {
    pub fn new(volume: u64, index: u64, size: u64, modified_ns: i128, changed_ns: i128) -> Self {
        FileIdentity {
            volume,
            index,
            size,
            modified_ns,
            changed_ns,
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The identity of the file alone (for directories, whose times change with every write).
    pub fn without_times(self) -> Self {
        FileIdentity {
            size: 0,
            modified_ns: 0,
            changed_ns: 0,
            ..self
        }
    }

    /// Whether both are versions of the same file.
    pub fn same_file(&self, other: &FileIdentity) -> bool {
        self.without_times() == other.without_times()
    }

    /// Whether a later change is sure to show in the identity. File times have a coarse clock, so
    /// a file changed within the same tick as our read could keep its identity (git's "racily
    /// clean" problem); such a version is re-read next time instead of trusted.
    pub fn is_settled(&self, read_at_ns: i128) -> bool {
        const CLOCK_SLACK_NS: i128 = 50_000_000;
        read_at_ns - self.modified_ns.max(self.changed_ns) > CLOCK_SLACK_NS
    }
}
