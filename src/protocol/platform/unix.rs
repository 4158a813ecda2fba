//! Unix (Linux, macOS): POSIX calls through `libc`.

use super::{FileIdentity, Replaced};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Opens a file for reading without following a symbolic link at `path` (ELOOP instead), and
/// without blocking on a FIFO planted there.
pub fn open_for_reading(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

/// Creates `path`, which must not exist yet (not even as a dangling link), with permissions `mode`.
pub fn create_new_file(path: &Path, mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
}

/// Opens `path`, creating it with permissions `mode` when missing, never through a link.
/// Read-only (enough for `flock`): closing it does not signal a write to the directory's
/// watchers, every channel's of them (inotify's `IN_CLOSE_WRITE`).
pub fn open_or_create(path: &Path, mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .mode(mode)
        .custom_flags(libc::O_CREAT | libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

/// Whether `dir` is on a file system of this host, where a PID written in a file names one of
/// this host's processes (not NFS, SMB, FUSE mounts such as sshfs, or cluster file systems).
pub fn is_local_file_system(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    let mut info: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(path.as_ptr(), &mut info) } != 0 {
        return false;
    }
    is_local(&info)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn is_local(info: &libc::statfs) -> bool {
    const REMOTE: [u64; 12] = [
        0x6969,      // NFS
        0x517B,      // SMB
        0xFF53_4D42, // CIFS
        0xFE53_4D42, // SMB2
        0x6573_5546, // FUSE
        0x7375_7245, // Coda
        0x5346_414F, // AFS
        0x00C3_6400, // Ceph
        0x0102_1997, // 9P
        0x0116_1970, // GFS2
        0x7461_636F, // OCFS2
        0x0BD0_0BD0, // Lustre
    ];
    // f_type is i64 with glibc, u64 with musl, u32 on some 32-bit targets.
    #[allow(clippy::unnecessary_cast)]
    let magic = info.f_type as u64 & 0xFFFF_FFFF;
    !REMOTE.contains(&magic)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn is_local(info: &libc::statfs) -> bool {
    info.f_flags as i64 & libc::MNT_LOCAL as i64 != 0
}

/// Puts the file at `from` in place of `to` (the last step of a replace by rename): readers see
/// the old file or the new one, never none. Returns how.
///
/// Linux, over a file on ext4 or btrfs: the two are swapped (renameat2's `RENAME_EXCHANGE`) and
/// the old one, now at `from`, removed. A plain rename over an existing file makes these file
/// systems write the new file's data back at once (ext4's `auto_da_alloc`, btrfs's flush on
/// rename: a safeguard against empty files after a power failure for programs that never fsync).
/// On ext4 that was two thirds of a send; a message file is worthless after a power failure.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn replace(from: &Path, to: &Path) -> io::Result<Replaced> {
    if flushes_on_rename(from) && exchange(from, to).is_ok() {
        match fs::remove_file(from) {
            // A directory was at `to` (a plain rename fails there): put it back, and let the
            // rename below report why.
            Err(e) if e.raw_os_error() == Some(libc::EISDIR) => exchange(from, to)?,
            // Otherwise whatever is left at `from` is replaced by the next write.
            _ => return Ok(Replaced::Swapped),
        }
    }
    fs::rename(from, to).map(|()| Replaced::Renamed)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn replace(from: &Path, to: &Path) -> io::Result<Replaced> {
    fs::rename(from, to).map(|()| Replaced::Renamed)
}

/// Whether the file system holding `path` writes a file's data back when it is renamed over
/// another (ext2/3/4, btrfs).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn flushes_on_rename(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    const EXT4: u64 = 0xEF53;
    const BTRFS: u64 = 0x9123_683E;
    let Ok(path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    let mut info: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(path.as_ptr(), &mut info) } != 0 {
        return false;
    }
    // f_type is i64 with glibc, u64 with musl, u32 on some 32-bit targets.
    #[allow(clippy::unnecessary_cast)]
    let magic = info.f_type as u64 & 0xFFFF_FFFF;
    magic == EXT4 || magic == BTRFS
}

/// Swaps the files at `a` and `b` atomically (both must exist).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
    };
    let (a, b) = (c_path(a)?, c_path(b)?);
    let swapped = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if swapped == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Creates `dir` and its missing parents with permissions `mode`.
pub fn create_dir_all_private(dir: &Path, mode: u32) -> io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(mode).create(dir)
}

fn identity_from(metadata: &fs::Metadata) -> FileIdentity {
    FileIdentity::new(
        metadata.dev(),
        metadata.ino(),
        metadata.len(),
        metadata.mtime() as i128 * 1_000_000_000 + metadata.mtime_nsec() as i128,
        metadata.ctime() as i128 * 1_000_000_000 + metadata.ctime_nsec() as i128,
    )
}

/// Device, inode, size, modification and change times of an open file.
pub fn identity_of(file: &File) -> io::Result<FileIdentity> {
    Ok(identity_from(&file.metadata()?))
}

/// The size of an open file as its file system holds it now, not as this host cached it: on a
/// network or FUSE file system the kernel keeps a file's size for a while (attribute caching), and
/// a read stops at the cached size (a cut-off copy of a file another host replaced). Linux asks
/// the file system again (`statx` with `AT_STATX_FORCE_SYNC`, which also updates the cached size
/// that reads stop at); elsewhere it is the size `fstat` reports.
pub fn fresh_len(file: &File) -> io::Result<u64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::fd::AsRawFd;
        let mut info: libc::statx = unsafe { std::mem::zeroed() };
        let flags = libc::AT_EMPTY_PATH | libc::AT_STATX_FORCE_SYNC;
        let done = unsafe {
            libc::statx(
                file.as_raw_fd(),
                c"".as_ptr(),
                flags,
                libc::STATX_SIZE,
                &mut info,
            )
        };
        if done == 0 {
            return Ok(info.stx_size);
        }
    }
    Ok(file.metadata()?.len())
}

/// The identity of what is at `path` itself (a link is not followed), and whether it is a
/// regular file.
pub fn identity_at(path: &Path) -> io::Result<(FileIdentity, bool)> {
    let metadata = fs::symlink_metadata(path)?;
    Ok((identity_from(&metadata), metadata.file_type().is_file()))
}

/// Whether process `pid` exists on this host. Signal 0 checks existence; EPERM means it exists
/// but belongs to another user.
pub fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    let result = unsafe { libc::kill(pid, 0) };
    let exists = result == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    exists && !is_thread_of_another_process(pid) && !has_exited(pid)
}

/// When the running process `pid` started, as an opaque stamp that a process reusing the id
/// later would not share; `None` when it is not running or this OS cannot tell.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn process_started(pid: u32) -> Option<u64> {
    use std::io::Read;
    // Field 22 of /proc/<pid>/stat, counted after the command name (which may hold spaces). A
    // thread id that reuses `pid` has a /proc entry too, but not the same start.
    let pid = libc::pid_t::try_from(pid).ok().filter(|&pid| pid > 0)?;
    // One read: /proc gives its files no size, so `read_to_string` would probe from 32 bytes.
    let mut stat = Vec::with_capacity(1024);
    File::open(format!("/proc/{pid}/stat"))
        .and_then(|mut file| file.read_to_end(&mut stat))
        .ok()?;
    let stat = std::str::from_utf8(&stat).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // Field 3, the state: a zombie (killed, not yet reaped by its parent) no longer runs.
    if matches!(fields.next(), Some("Z" | "X")) {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// When process `pid` started, in milliseconds since the Unix epoch (Linux: to the second, the
/// boot time being kept in whole seconds); `None` when it is not running or this OS cannot tell.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn process_start_ms(pid: u32) -> Option<u64> {
    let ticks = process_started(pid)?;
    let per_second = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
        .ok()
        .filter(|&n| n > 0)?;
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let boot_s: u64 = stat
        .lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(boot_s * 1000 + ticks * 1000 / per_second)
}

#[cfg(any(target_os = "macos", target_os = "ios"))]
pub fn process_start_ms(pid: u32) -> Option<u64> {
    process_started(pid).map(|micros| micros / 1000)
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios"
)))]
pub fn process_start_ms(_pid: u32) -> Option<u64> {
    None
}

#[cfg(any(target_os = "macos", target_os = "ios"))]
pub fn process_started(pid: u32) -> Option<u64> {
    let pid = libc::c_int::try_from(pid).ok().filter(|&pid| pid > 0)?;
    let info = bsd_info(pid)?;
    (info.pbi_status != libc::SZOMB)
        .then(|| info.pbi_start_tvsec * 1_000_000 + info.pbi_start_tvusec)
}

/// What macOS tells of process `pid`, if it exists.
#[cfg(any(target_os = "macos", target_os = "ios"))]
fn bsd_info(pid: libc::c_int) -> Option<libc::proc_bsdinfo> {
    let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
    let filled = unsafe {
        libc::proc_pidinfo(
            pid,
            libc::PROC_PIDTBSDINFO,
            0,
            (&mut info as *mut libc::proc_bsdinfo).cast(),
            size,
        )
    };
    (filled == size).then_some(info)
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios"
)))]
pub fn process_started(_pid: u32) -> Option<u64> {
    None
}

/// Makes the calling thread (one of the package's workers) give way to the JavaScript thread:
/// under Linux's default policy a worker woken by the JavaScript thread (a send handed to the
/// writer) may preempt it on its core, in the middle of the call that woke it (measured: a
/// `promises.sendEvent()` taking 3.6 ms to return instead of 0.6 ms while a Python process
/// hammered the outbox). `SCHED_BATCH` keeps the thread's fair share of the CPU but takes away
/// that wake-up preemption; an idle core still runs the worker at once.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn give_way_to_javascript() {
    // Priority 0, the only one of SCHED_BATCH (musl's struct has more fields, all zero too).
    let param: libc::sched_param = unsafe { std::mem::zeroed() };
    // Best effort: a sandbox may refuse it, and nothing depends on it.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn give_way_to_javascript() {}

/// Whether a file open in this process keeps its directory from being removed: not here (an
/// unlinked file lives on without a name).
pub const OPEN_FILES_PIN_THEIR_DIRECTORY: bool = false;

/// Linux signals thread ids like process ids: a dead process's id reused for a thread must not
/// make the process look alive.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn is_thread_of_another_process(pid: libc::pid_t) -> bool {
    let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("Tgid:"))
        .and_then(|tgid| tgid.trim().parse::<libc::pid_t>().ok())
        .is_some_and(|tgid| tgid != pid)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn is_thread_of_another_process(_pid: libc::pid_t) -> bool {
    false
}

/// A process that has exited but is not reaped yet (a zombie) still answers `kill(pid, 0)`.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn has_exited(pid: libc::pid_t) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rfind(')')
        .and_then(|end| stat[end + 1..].split_whitespace().next());
    matches!(state, Some("Z" | "X"))
}

#[cfg(any(target_os = "macos", target_os = "ios"))]
fn has_exited(pid: libc::pid_t) -> bool {
    bsd_info(pid).is_some_and(|info| info.pbi_status == libc::SZOMB)
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios"
)))]
fn has_exited(_pid: libc::pid_t) -> bool {
    false
}

/// This host's name (as Python's `socket.gethostname()` gives it), read once.
pub fn host_name() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        let mut buffer = [0u8; 256];
        if unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) } != 0 {
            return String::new();
        }
        let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
        String::from_utf8_lossy(&buffer[..end]).into_owned()
    })
}

/// The path with every symbolic link resolved.
pub fn resolve_links(path: &Path) -> io::Result<std::path::PathBuf> {
    fs::canonicalize(path)
}

/// The first symbolic link on the way to `path` (itself included) that belongs to another user
/// (root's are trusted), with why it is refused.
pub fn foreign_link_on_the_way(path: &Path) -> Option<(std::path::PathBuf, String)> {
    let our_uid = unsafe { libc::geteuid() };
    let absolute = std::path::absolute(path).ok()?;
    absolute.ancestors().find_map(|step| {
        let metadata = fs::symlink_metadata(step).ok()?;
        let uid = metadata.uid();
        (metadata.file_type().is_symlink() && uid != our_uid && uid != 0).then(|| {
            (
                step.to_path_buf(),
                format!("is a symbolic link owned by uid {uid}, who could re-point it"),
            )
        })
    })
}

/// Why other local users could tamper with `dir`, if they could: the policy of OpenSSH's
/// StrictModes as Debian ships it. The owner must be this user (root may not use a directory
/// another user owns either: that user could swap files under it). Group write is accepted only
/// for a private group: the owner's primary group, named like the owner, with no other members
/// (the `umask 002` default on Debian and Ubuntu). World write is never accepted.
pub fn dir_privacy_problem(dir: &Path) -> io::Result<Option<String>> {
    let metadata = fs::metadata(dir)?;
    let our_uid = unsafe { libc::geteuid() };
    let mode = metadata.mode() & 0o7777;
    Ok(if metadata.uid() != our_uid {
        Some(format!(
            "is owned by uid {}, not by this process (uid {our_uid})",
            metadata.uid()
        ))
    } else if mode & 0o002 != 0 {
        Some(format!("is writable by others (mode {:o})", mode & 0o777))
    } else if mode & 0o020 != 0 && !is_private_group(metadata.gid(), our_uid) {
        Some(format!(
            "is writable by group {} (mode {:o}), which is not the owner's private group",
            metadata.gid(),
            mode & 0o777
        ))
    } else {
        None
    })
}

/// A user's private group: the user's primary group, with the user's name, no listed members
/// other than the user, and no other user whose primary group it is (such a user is in the group
/// without being listed, as Debian's sshd StrictModes counts too).
fn is_private_group(gid: libc::gid_t, uid: libc::uid_t) -> bool {
    let Some((user_name, primary_gid)) = user_entry(uid) else {
        return false;
    };
    let Some((group_name, members)) = group_entry(gid) else {
        return false;
    };
    primary_gid == gid
        && group_name == user_name
        && members.iter().all(|m| *m == user_name)
        && !another_user_has_primary_group(gid, uid)
}

/// Whether a user other than `uid` has `gid` as primary group (the whole user database, NSS
/// included, as `getpwent` walks it).
fn another_user_has_primary_group(gid: libc::gid_t, uid: libc::uid_t) -> bool {
    // getpwent walks one process-wide cursor.
    static USER_DATABASE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _walk = crate::protocol::sync::lock(&USER_DATABASE);
    unsafe { libc::setpwent() };
    let mut found = false;
    loop {
        let entry = unsafe { libc::getpwent() };
        if entry.is_null() {
            break;
        }
        let (entry_uid, entry_gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
        if entry_gid == gid && entry_uid != uid {
            found = true;
            break;
        }
    }
    unsafe { libc::endpwent() };
    found
}

fn user_entry(uid: libc::uid_t) -> Option<(Vec<u8>, libc::gid_t)> {
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    let status = unsafe {
        libc::getpwuid_r(
            uid,
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        )
    };
    if status != 0 || found.is_null() {
        return None;
    }
    let name = unsafe { std::ffi::CStr::from_ptr(entry.pw_name) };
    Some((name.to_bytes().to_vec(), entry.pw_gid))
}

fn group_entry(gid: libc::gid_t) -> Option<(Vec<u8>, Vec<Vec<u8>>)> {
    let mut buffer = vec![0 as libc::c_char; 64 * 1024];
    let mut entry: libc::group = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::group = std::ptr::null_mut();
    let status = unsafe {
        libc::getgrgid_r(
            gid,
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        )
    };
    if status != 0 || found.is_null() {
        return None;
    }
    let name = unsafe { std::ffi::CStr::from_ptr(entry.gr_name) }
        .to_bytes()
        .to_vec();
    let mut members = Vec::new();
    let mut cursor = entry.gr_mem;
    while !cursor.is_null() && unsafe { !(*cursor).is_null() } {
        members.push(
            unsafe { std::ffi::CStr::from_ptr(*cursor) }
                .to_bytes()
                .to_vec(),
        );
        cursor = unsafe { cursor.add(1) };
    }
    Some((name, members))
}

/// The POSIX name of an OS error, as Node's `fs` errors carry it.
pub fn error_code(error: &io::Error) -> Option<&'static str> {
    Some(match error.raw_os_error()? {
        libc::ENOENT => "ENOENT",
        libc::EACCES => "EACCES",
        libc::EPERM => "EPERM",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EEXIST => "EEXIST",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::EBUSY => "EBUSY",
        libc::ELOOP => "ELOOP",
        libc::EMFILE => "EMFILE",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        _ => return None,
    })
}

/// The error for a file standing where a directory should be.
pub fn not_a_directory() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOTDIR)
}

/// Whether replacing a file failed because another process holds it (possible on Unix only
/// through a network file system serving Windows clients): worth retrying for a while.
pub fn is_sharing_conflict(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EACCES | libc::EPERM | libc::EBUSY)
    )
}

#[cfg(test)]
pub mod test_support {
    /// An error the platform reports when a file is held by another process.
    pub fn sharing_violation() -> std::io::Error {
        std::io::Error::from_raw_os_error(libc::EBUSY)
    }
}

/// Makes a descriptor blocking (clears `O_NONBLOCK`).
#[cfg(target_os = "linux")]
pub fn set_blocking(fd: std::os::fd::RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor the caller owns, with plain integer arguments.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::channel::{Channel, ChannelOptions, Role};
    use crate::protocol::files::{read_message_file, replace_file};
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// Runs a user-administration command (root only); panics with its output when it fails.
    fn admin(args: &[&str]) {
        let out = std::process::Command::new(args[0])
            .args(&args[1..])
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", args[0]));
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The file system of `dir` as `stat -f` names it (checked apart from `flushes_on_rename`).
    #[cfg(target_os = "linux")]
    fn file_system_of(dir: &Path) -> String {
        let out = std::process::Command::new("stat")
            .args(["-f", "-c", "%T"])
            .arg(dir)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_replace_swaps_on_ext4_and_renames_on_tmpfs_and_either_leaves_only_the_new_file() {
        let mut dirs = vec![tempfile::tempdir().unwrap()];
        if Path::new("/dev/shm").is_dir() {
            dirs.push(tempfile::tempdir_in("/dev/shm").unwrap());
        }
        let mut seen = Vec::new();
        for dir in &dirs {
            let (tmp, target) = (dir.path().join("out.tmp"), dir.path().join("out.json"));
            fs::write(&target, "[1]").unwrap();
            let reading = File::open(&target).unwrap();
            fs::write(&tmp, "[1,2]").unwrap();
            let how = replace(&tmp, &target).unwrap();
            let file_system = file_system_of(dir.path());
            match file_system.as_str() {
                "ext2/ext3" | "ext4" | "btrfs" => assert_eq!(how, Replaced::Swapped),
                _ => assert_eq!(how, Replaced::Renamed, "{file_system}"),
            }
            assert_eq!(fs::read_to_string(&target).unwrap(), "[1,2]");
            assert!(!tmp.exists(), "the old file stays at {tmp:?}");
            // A reader that had the old file open still reads it whole.
            assert_eq!(io::read_to_string(reading).unwrap(), "[1]");
            seen.push(file_system);
        }
        // Under CI the temporary directory is on ext4 (the root file system): the swap is tested.
        if std::env::var("CI").as_deref() == Ok("true") {
            assert!(seen.iter().any(|fs| fs == "ext2/ext3"), "{seen:?}");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_replace_over_a_directory_fails_as_a_rename_does_and_a_link_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let (tmp, target) = (dir.path().join("out.tmp"), dir.path().join("out.json"));
        fs::create_dir(&target).unwrap();
        fs::write(target.join("inside"), "x").unwrap();
        fs::write(&tmp, "[]").unwrap();
        let err = replace(&tmp, &target).unwrap_err();
        assert!(target.join("inside").is_file(), "{err}");
        assert_eq!(fs::read_to_string(&tmp).unwrap(), "[]");
        fs::remove_dir_all(&target).unwrap();
        // A link planted at the target is replaced itself; what it points to is left alone.
        let elsewhere = dir.path().join("elsewhere");
        fs::write(&elsewhere, "keep").unwrap();
        std::os::unix::fs::symlink(&elsewhere, &target).unwrap();
        replace(&tmp, &target).unwrap();
        assert!(!fs::symlink_metadata(&target)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read_to_string(&target).unwrap(), "[]");
        assert_eq!(fs::read_to_string(&elsewhere).unwrap(), "keep");
        assert!(!tmp.exists());
    }

    #[test]
    fn a_group_that_is_another_users_primary_group_is_not_private() {
        if unsafe { libc::geteuid() } != 0 {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "CI runs as root"
            );
            return; // creating users needs root
        }
        let name = format!("ipckit{}", std::process::id());
        let other = format!("{name}x");
        admin(&["groupadd", &name]);
        admin(&["useradd", "-M", "-N", "-g", &name, &name]);
        struct Cleanup(Vec<Vec<String>>);
        impl Drop for Cleanup {
            fn drop(&mut self) {
                for args in &self.0 {
                    let _ = std::process::Command::new(&args[0])
                        .args(&args[1..])
                        .output();
                }
            }
        }
        let _cleanup = Cleanup(vec![
            vec!["userdel".into(), other.clone()],
            vec!["userdel".into(), name.clone()],
            vec!["groupdel".into(), name.clone()],
        ]);
        let (owner, gid) = {
            let c = std::ffi::CString::new(name.as_str()).unwrap();
            let entry = unsafe { libc::getpwnam(c.as_ptr()) };
            assert!(!entry.is_null());
            unsafe { ((*entry).pw_uid, (*entry).pw_gid) }
        };
        assert!(
            is_private_group(gid, owner),
            "the owner's own group is private"
        );
        // `useradd -g <group>`: in the group without being listed in /etc/group.
        admin(&["useradd", "-M", "-N", "-g", &name, &other]);
        assert!(!is_private_group(gid, owner));
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_process_start_is_told_in_wall_clock_time() {
        let started = process_start_ms(std::process::id()).expect("our own start");
        let now = crate::protocol::message::now_ms();
        // Started before now (to the second: the boot time is kept in whole seconds), and this
        // test process has not run for a day.
        assert!(
            started <= now + 1000 && now - started < 86_400_000,
            "{started} vs {now}"
        );
        assert_eq!(process_start_ms(0x7fff_fff0), None);
    }

    #[test]
    fn a_zombie_is_not_alive() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Not reaped yet: it stays a zombie once it has exited.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while process_alive(pid) {
            assert!(
                std::time::Instant::now() < deadline,
                "the zombie still looks alive"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(process_started(pid), None);
        assert!(
            unsafe { libc::kill(pid as libc::pid_t, 0) } == 0,
            "still a zombie"
        );
        child.wait().unwrap();
    }

    #[test]
    fn replace_refuses_to_write_through_a_planted_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        let tmp = dir.path().join("out.tmp");
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        let patience = std::time::Duration::from_millis(100);
        replace_file(&tmp, &dir.path().join("out.json"), b"[]", 0o600, patience).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(
            fs::read_to_string(dir.path().join("out.json")).unwrap(),
            "[]"
        );
    }

    #[test]
    fn reading_refuses_a_symlink_at_the_channel_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere.json");
        fs::write(&target, "[]").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = read_message_file(&link, 4096).unwrap_err();
        assert_eq!(err.code(), "ELOOP");
        assert!(err.to_string().contains("link.json"), "{err}");
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_thread_id_is_not_a_live_process() {
        assert!(process_alive(std::process::id()));
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            tx.send(unsafe { libc::gettid() }).unwrap();
            let _ = done_rx.recv();
        });
        let tid = rx.recv().unwrap();
        assert!(
            !process_alive(tid as u32),
            "thread {tid} taken for a process"
        );
        drop(done_tx);
        thread.join().unwrap();
    }

    #[test]
    fn channel_files_and_directories_are_private() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("a/b");
        Channel::open(&dir, Role::Frontend, ChannelOptions::default()).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&base.path().join("a")), 0o700);
        assert_eq!(mode(&dir.join("frontend_to_backend.json")), 0o600);
    }

    #[test]
    fn a_directory_others_can_write_is_refused_unless_allowed() {
        let base = tempfile::tempdir().unwrap();
        fs::set_permissions(base.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let error = Channel::open(base.path(), Role::Backend, ChannelOptions::default())
            .err()
            .unwrap();
        assert_eq!(error.code(), "EPERM");
        assert!(error.to_string().contains("writable by others (mode 777)"));
        let allowed = ChannelOptions {
            allow_insecure: true,
            ..ChannelOptions::default()
        };
        assert!(Channel::open(base.path(), Role::Backend, allowed).is_ok());
    }

    fn chown(path: &Path, uid: u32, gid: u32) -> bool {
        let path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        unsafe { libc::chown(path.as_ptr(), uid, gid) == 0 }
    }

    #[test]
    fn group_write_is_accepted_only_for_the_owners_private_group() {
        let uid = unsafe { libc::geteuid() };
        let (_, primary_gid) = user_entry(uid).unwrap();
        let base = tempfile::tempdir().unwrap();
        fs::set_permissions(base.path(), fs::Permissions::from_mode(0o770)).unwrap();
        assert!(chown(base.path(), uid, primary_gid));
        // umask 002 with a private group per user (Debian, Ubuntu): fine.
        assert_eq!(
            dir_privacy_problem(base.path()).unwrap().is_none(),
            is_private_group(primary_gid, uid)
        );
        if uid == 0 {
            assert!(is_private_group(0, 0), "root's group is root's own");
            // "users" (gid 100 on Debian) is nobody's private group.
            assert!(chown(base.path(), uid, 100));
            let problem = dir_privacy_problem(base.path()).unwrap().unwrap();
            assert!(problem.contains("writable by group 100"), "{problem}");
        }
    }

    #[test]
    fn a_directory_owned_by_another_user_is_refused_even_for_root() {
        let base = tempfile::tempdir().unwrap();
        let our_uid = unsafe { libc::geteuid() };
        let changed = chown(base.path(), 65534, u32::MAX);
        assert!(
            changed || our_uid != 0,
            "root could not chown a temporary directory"
        );
        if changed {
            let problem = dir_privacy_problem(base.path()).unwrap().unwrap();
            assert!(problem.contains("owned by uid 65534"), "{problem}");
        }
    }

    #[test]
    fn a_link_owned_by_another_user_on_the_way_is_refused_unless_allowed() {
        let base = tempfile::tempdir().unwrap();
        let real = base.path().join("real");
        fs::create_dir(&real).unwrap();
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let path = std::ffi::CString::new(link.as_os_str().as_encoded_bytes()).unwrap();
        if unsafe { libc::lchown(path.as_ptr(), 65534, u32::MAX) } != 0 {
            assert_ne!(
                unsafe { libc::geteuid() },
                0,
                "root could not lchown a link"
            );
            return;
        }
        let dir = link.join("chan");
        let error = Channel::open(&dir, Role::Frontend, ChannelOptions::default())
            .err()
            .unwrap();
        assert_eq!(error.code(), "EPERM");
        assert!(error.to_string().contains("owned by uid 65534"), "{error}");
        assert!(
            !real.join("chan").exists(),
            "nothing created through the link"
        );
        let allowed = ChannelOptions {
            allow_insecure: true,
            ..ChannelOptions::default()
        };
        assert!(Channel::open(&dir, Role::Frontend, allowed).is_ok());
    }

    #[test]
    fn re_pointing_a_link_later_does_not_move_the_channel() {
        let base = tempfile::tempdir().unwrap();
        let (ours, theirs) = (base.path().join("ours"), base.path().join("theirs"));
        fs::create_dir(&ours).unwrap();
        fs::create_dir(&theirs).unwrap();
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&ours, &link).unwrap();
        let front = Channel::open(&link, Role::Frontend, ChannelOptions::default()).unwrap();
        assert_eq!(front.dir(), link.as_path());
        fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(&theirs, &link).unwrap();
        front.send_event("e", serde_json::json!(1)).unwrap();
        let written = fs::read_to_string(ours.join("frontend_to_backend.json")).unwrap();
        assert!(written.contains("\"e\""));
        assert!(!theirs.join("frontend_to_backend.json").exists());
    }

    #[test]
    fn a_directory_replaced_by_one_others_control_is_not_written_to() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("chan");
        let front = Channel::open(&dir, Role::Frontend, ChannelOptions::default()).unwrap();
        fs::rename(&dir, base.path().join("moved")).unwrap();
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let error = front.send_event("e", serde_json::json!(1)).unwrap_err();
        assert_eq!(error.code(), "EPERM");
        assert!(error.to_string().contains("writable by others"), "{error}");
        assert!(!dir.join("frontend_to_backend.json").exists());
        // Re-created privately (the peer came back): fine again.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        front.send_event("e", serde_json::json!(2)).unwrap();
        assert!(dir.join("frontend_to_backend.json").exists());
    }
}
