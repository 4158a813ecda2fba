//! Windows: Win32 calls through `windows-sys`.
//!
//! Files are opened with read, write and delete sharing and never follow a reparse point
//! (symbolic link or junction) at the channel's paths. A channel directory is private when its
//! owner and the accounts its DACL lets write are this user, SYSTEM or Administrators: the rule
//! OpenSSH for Windows applies to `~/.ssh`.

use super::{FileIdentity, Replaced};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::windows::fs::{MetadataExt, OpenOptionsExt};
use std::os::windows::io::AsRawHandle;
use std::path::Path;
use windows_sys::Win32::Foundation::{
    CloseHandle, LocalFree, ERROR_ACCESS_DENIED, ERROR_ALREADY_EXISTS, ERROR_CANT_RESOLVE_FILENAME,
    ERROR_DIRECTORY, ERROR_DIR_NOT_EMPTY, ERROR_DISK_FULL, ERROR_FILENAME_EXCED_RANGE,
    ERROR_FILE_EXISTS, ERROR_FILE_NOT_FOUND, ERROR_HANDLE_DISK_FULL, ERROR_INVALID_NAME,
    ERROR_LOCK_VIOLATION, ERROR_PATH_NOT_FOUND, ERROR_SHARING_VIOLATION, ERROR_TOO_MANY_OPEN_FILES,
    ERROR_WRITE_PROTECT, FILETIME, HANDLE, STILL_ACTIVE,
};
use windows_sys::Win32::Security::Authorization::{GetSecurityInfo, SE_FILE_OBJECT};
use windows_sys::Win32::Security::{
    EqualSid, GetAce, GetTokenInformation, IsWellKnownSid, TokenUser, WinBuiltinAdministratorsSid,
    WinLocalSystemSid, ACCESS_ALLOWED_ACE, ACE_HEADER, ACL, DACL_SECURITY_INFORMATION,
    INHERIT_ONLY_ACE, OWNER_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID, TOKEN_QUERY,
    TOKEN_USER,
};
use windows_sys::Win32::Storage::FileSystem::{
    GetDriveTypeW, GetFileInformationByHandle, GetVolumePathNameW, BY_HANDLE_FILE_INFORMATION,
    DELETE, FILE_ADD_FILE, FILE_ADD_SUBDIRECTORY, FILE_APPEND_DATA, FILE_ATTRIBUTE_DIRECTORY,
    FILE_ATTRIBUTE_REPARSE_POINT, FILE_DELETE_CHILD, FILE_FLAG_BACKUP_SEMANTICS,
    FILE_FLAG_OPEN_REPARSE_POINT, FILE_READ_ATTRIBUTES, FILE_SHARE_DELETE, FILE_SHARE_READ,
    FILE_SHARE_WRITE, FILE_WRITE_ATTRIBUTES, FILE_WRITE_DATA, READ_CONTROL,
};
use windows_sys::Win32::System::SystemInformation::{ComputerNameDnsHostname, GetComputerNameExW};
use windows_sys::Win32::System::SystemServices::ACCESS_ALLOWED_ACE_TYPE;
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, GetExitCodeProcess, GetProcessTimes, OpenProcess, OpenProcessToken,
    PROCESS_QUERY_LIMITED_INFORMATION,
};
use windows_sys::Win32::System::WindowsProgramming::{DRIVE_NO_ROOT_DIR, DRIVE_REMOTE};

/// Every open shares read, write and delete, so that we never make another process's replace
/// of the file fail while we hold it.
const SHARE_ALL: u32 = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;

/// Puts the file at `from` in place of `to` (MoveFileExW with MOVEFILE_REPLACE_EXISTING).
pub fn replace(from: &Path, to: &Path) -> io::Result<Replaced> {
    fs::rename(from, to).map(|()| Replaced::Renamed)
}

/// Opens a file for reading without following a reparse point at `path` (ELOOP instead).
pub fn open_for_reading(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .share_mode(SHARE_ALL)
        .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS)
        .open(path)?;
    refuse_reparse_point(&file)?;
    Ok(file)
}

fn refuse_reparse_point(file: &File) -> io::Result<()> {
    if file.metadata()?.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
        return Err(io::Error::from_raw_os_error(
            ERROR_CANT_RESOLVE_FILENAME as i32,
        ));
    }
    Ok(())
}

/// Creates `path`, which must not exist yet (not even as a link). `mode` has no meaning here: the
/// file inherits the directory's ACL.
pub fn create_new_file(path: &Path, _mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .share_mode(SHARE_ALL)
        .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
        .open(path)
}

/// Opens `path`, creating it when missing, never through a reparse point.
pub fn open_or_create(path: &Path, _mode: u32) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .share_mode(SHARE_ALL)
        .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
        .open(path)?;
    refuse_reparse_point(&file)?;
    Ok(file)
}

/// Whether `dir` is on a volume of this host, where a PID written in a file names one of this
/// host's processes (not a mapped network drive or a UNC share).
pub fn is_local_file_system(dir: &Path) -> bool {
    use std::os::windows::ffi::OsStrExt;
    let wide: Vec<u16> = dir.as_os_str().encode_wide().chain([0]).collect();
    let mut root = vec![0u16; wide.len() + 8];
    let found = unsafe { GetVolumePathNameW(wide.as_ptr(), root.as_mut_ptr(), root.len() as u32) };
    found != 0
        && !matches!(
            unsafe { GetDriveTypeW(root.as_ptr()) },
            DRIVE_REMOTE | DRIVE_NO_ROOT_DIR
        )
}

/// Creates `dir` and its missing parents; they inherit their parent's ACL.
pub fn create_dir_all_private(dir: &Path, _mode: u32) -> io::Result<()> {
    fs::create_dir_all(dir)
}

fn handle_information(file: &File) -> io::Result<BY_HANDLE_FILE_INFORMATION> {
    let mut info: BY_HANDLE_FILE_INFORMATION = unsafe { std::mem::zeroed() };
    if unsafe { GetFileInformationByHandle(file.as_raw_handle() as HANDLE, &mut info) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info)
}

/// Nanoseconds since the Unix epoch of a FILETIME (100 ns ticks since 1601).
fn unix_ns(time: FILETIME) -> i128 {
    const TICKS_1601_TO_1970: i128 = 116_444_736_000_000_000;
    let ticks = ((time.dwHighDateTime as i128) << 32) | time.dwLowDateTime as i128;
    (ticks - TICKS_1601_TO_1970) * 100
}

fn identity_from(info: &BY_HANDLE_FILE_INFORMATION) -> FileIdentity {
    let written = unix_ns(info.ftLastWriteTime);
    FileIdentity::new(
        info.dwVolumeSerialNumber as u64,
        ((info.nFileIndexHigh as u64) << 32) | info.nFileIndexLow as u64,
        ((info.nFileSizeHigh as u64) << 32) | info.nFileSizeLow as u64,
        written,
        written,
    )
}

/// Volume serial number, file index, size and last-write time of an open file.
pub fn identity_of(file: &File) -> io::Result<FileIdentity> {
    Ok(identity_from(&handle_information(file)?))
}

/// The size of an open file as the file system reports it (an SMB client revalidates it when
/// the file is opened).
pub fn fresh_len(file: &File) -> io::Result<u64> {
    Ok(file.metadata()?.len())
}

/// The identity of what is at `path` itself (a reparse point is not followed), and whether it
/// is a regular file.
pub fn identity_at(path: &Path) -> io::Result<(FileIdentity, bool)> {
    let file = OpenOptions::new()
        .access_mode(FILE_READ_ATTRIBUTES)
        .share_mode(SHARE_ALL)
        .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS)
        .open(path)?;
    let info = handle_information(&file)?;
    let not_file = FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_REPARSE_POINT;
    Ok((identity_from(&info), info.dwFileAttributes & not_file == 0))
}

/// Whether process `pid` is running on this host. A process we may not query exists.
pub fn process_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    let process = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if process.is_null() {
        return io::Error::last_os_error().raw_os_error() == Some(ERROR_ACCESS_DENIED as i32);
    }
    let mut exit_code = 0u32;
    let queried = unsafe { GetExitCodeProcess(process, &mut exit_code) } != 0;
    unsafe { CloseHandle(process) };
    !queried || exit_code == STILL_ACTIVE as u32
}

/// When the running process `pid` started (its creation time), as an opaque stamp that a
/// process reusing the id later would not share; `None` when it is not running.
pub fn process_started(pid: u32) -> Option<u64> {
    if pid == 0 {
        return None;
    }
    let process = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if process.is_null() {
        return None;
    }
    let zero = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
    let mut exit_code = 0u32;
    let running = unsafe { GetExitCodeProcess(process, &mut exit_code) } != 0
        && exit_code == STILL_ACTIVE as u32;
    let queried =
        unsafe { GetProcessTimes(process, &mut created, &mut exited, &mut kernel, &mut user) } != 0;
    unsafe { CloseHandle(process) };
    (running && queried)
        .then(|| (u64::from(created.dwHighDateTime) << 32) | u64::from(created.dwLowDateTime))
}

/// When process `pid` started, in milliseconds since the Unix epoch; `None` when it is not
/// running.
pub fn process_start_ms(pid: u32) -> Option<u64> {
    let created = process_started(pid)?;
    let time = FILETIME {
        dwLowDateTime: created as u32,
        dwHighDateTime: (created >> 32) as u32,
    };
    u64::try_from(unix_ns(time) / 1_000_000).ok()
}

/// Nothing: Windows boosts the thread that a wait satisfies, not at the waker's expense.
pub fn give_way_to_javascript() {}

/// Whether a file open in this process keeps its directory from being removed: yes (deleting an
/// open file only marks it, and its directory is not empty until the last handle closes).
pub const OPEN_FILES_PIN_THEIR_DIRECTORY: bool = true;

/// This host's DNS name (as Python's `socket.gethostname()` gives it), read once.
pub fn host_name() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        let mut buffer = [0u16; 256];
        let mut size = buffer.len() as u32;
        let ok =
            unsafe { GetComputerNameExW(ComputerNameDnsHostname, buffer.as_mut_ptr(), &mut size) };
        if ok == 0 {
            return String::new();
        }
        String::from_utf16_lossy(&buffer[..size as usize])
    })
}

/// The path as given: resolving reparse points would turn it into a `\\?\` path, and links
/// here need privileges to create.
pub fn resolve_links(path: &Path) -> io::Result<std::path::PathBuf> {
    std::path::absolute(path)
}

/// No check here: the directory's own owner and DACL are checked instead.
pub fn foreign_link_on_the_way(_path: &Path) -> Option<(std::path::PathBuf, String)> {
    None
}

/// Rights that let an account add, replace or delete the directory's files, or take it over.
const WRITE_RIGHTS: u32 = FILE_WRITE_DATA
    | FILE_ADD_FILE
    | FILE_APPEND_DATA
    | FILE_ADD_SUBDIRECTORY
    | FILE_DELETE_CHILD
    | DELETE
    | FILE_WRITE_ATTRIBUTES
    | 0x0004_0000 // WRITE_DAC
    | 0x0008_0000 // WRITE_OWNER
    | 0x4000_0000 // GENERIC_WRITE
    | 0x1000_0000; // GENERIC_ALL

/// Why another account could tamper with `dir`, if it could: its owner, or an account its DACL
/// lets write, is not this user, SYSTEM or Administrators.
pub fn dir_privacy_problem(dir: &Path) -> io::Result<Option<String>> {
    let handle = OpenOptions::new()
        .access_mode(READ_CONTROL | FILE_READ_ATTRIBUTES)
        .share_mode(SHARE_ALL)
        .custom_flags(FILE_FLAG_BACKUP_SEMANTICS)
        .open(dir)?;
    let user = TokenUserSid::current()?;
    let mut owner: PSID = std::ptr::null_mut();
    let mut dacl: *mut ACL = std::ptr::null_mut();
    let mut descriptor: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    let status = unsafe {
        GetSecurityInfo(
            handle.as_raw_handle() as HANDLE,
            SE_FILE_OBJECT,
            OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
            &mut owner,
            std::ptr::null_mut(),
            &mut dacl,
            std::ptr::null_mut(),
            &mut descriptor,
        )
    };
    if status != 0 {
        return Err(io::Error::from_raw_os_error(status as i32));
    }
    let trusted = |sid: PSID| unsafe {
        EqualSid(sid, user.sid()) != 0
            || IsWellKnownSid(sid, WinLocalSystemSid) != 0
            || IsWellKnownSid(sid, WinBuiltinAdministratorsSid) != 0
    };
    let problem = if owner.is_null() || !trusted(owner) {
        Some("is owned by another account, not by this user, SYSTEM or Administrators".to_string())
    } else if dacl.is_null() {
        Some("has no DACL, so every account may write to it".to_string())
    } else {
        let count = unsafe { (*dacl).AceCount } as u32;
        (0..count).find_map(|index| {
            let mut ace: *mut core::ffi::c_void = std::ptr::null_mut();
            if unsafe { GetAce(dacl, index, &mut ace) } == 0 {
                return None;
            }
            let header = unsafe { &*(ace as *const ACE_HEADER) };
            let applies_here = header.AceFlags as u32 & INHERIT_ONLY_ACE == 0;
            if header.AceType as u32 != ACCESS_ALLOWED_ACE_TYPE || !applies_here {
                return None;
            }
            let allowed = ace as *const ACCESS_ALLOWED_ACE;
            let sid = unsafe { std::ptr::addr_of!((*allowed).SidStart) } as PSID;
            let mask = unsafe { (*allowed).Mask };
            (mask & WRITE_RIGHTS != 0 && !trusted(sid)).then(|| {
                format!(
                    "lets another account write to it (an ACL entry grants access mask {mask:#x})"
                )
            })
        })
    };
    unsafe { LocalFree(descriptor as _) };
    Ok(problem)
}

/// The SID of the user this process runs as.
struct TokenUserSid(Vec<u64>);

impl TokenUserSid {
    fn current() -> io::Result<Self> {
        let mut token: HANDLE = std::ptr::null_mut();
        if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
            return Err(io::Error::last_os_error());
        }
        // u64 storage keeps the TOKEN_USER header aligned.
        let mut buffer = vec![0u64; 128];
        let mut length = 0u32;
        let ok = unsafe {
            GetTokenInformation(
                token,
                TokenUser,
                buffer.as_mut_ptr().cast(),
                (buffer.len() * 8) as u32,
                &mut length,
            )
        };
        let error = io::Error::last_os_error();
        unsafe { CloseHandle(token) };
        if ok == 0 {
            return Err(error);
        }
        Ok(TokenUserSid(buffer))
    }

    fn sid(&self) -> PSID {
        unsafe { (*(self.0.as_ptr() as *const TOKEN_USER)).User.Sid }
    }
}

/// The POSIX name of an OS error, as Node's `fs` errors carry it (libuv's mapping).
pub fn error_code(error: &io::Error) -> Option<&'static str> {
    let code = u32::try_from(error.raw_os_error()?).ok()?;
    Some(match code {
        ERROR_FILE_NOT_FOUND | ERROR_PATH_NOT_FOUND | ERROR_INVALID_NAME => "ENOENT",
        ERROR_ACCESS_DENIED => "EPERM",
        ERROR_SHARING_VIOLATION | ERROR_LOCK_VIOLATION => "EBUSY",
        ERROR_FILE_EXISTS | ERROR_ALREADY_EXISTS => "EEXIST",
        ERROR_DISK_FULL | ERROR_HANDLE_DISK_FULL => "ENOSPC",
        ERROR_WRITE_PROTECT => "EROFS",
        ERROR_TOO_MANY_OPEN_FILES => "EMFILE",
        ERROR_FILENAME_EXCED_RANGE => "ENAMETOOLONG",
        ERROR_DIRECTORY => "ENOTDIR",
        ERROR_DIR_NOT_EMPTY => "ENOTEMPTY",
        ERROR_CANT_RESOLVE_FILENAME => "ELOOP",
        _ => return None,
    })
}

/// The error for a file standing where a directory should be.
pub fn not_a_directory() -> io::Error {
    io::Error::from_raw_os_error(ERROR_DIRECTORY as i32)
}

/// Whether replacing a file failed because another process holds it open without delete
/// sharing (Python's `open()`, antivirus scanners, indexers, backup tools): worth retrying.
pub fn is_sharing_conflict(error: &io::Error) -> bool {
    matches!(
        error
            .raw_os_error()
            .and_then(|code| u32::try_from(code).ok()),
        Some(ERROR_ACCESS_DENIED | ERROR_SHARING_VIOLATION | ERROR_LOCK_VIOLATION)
    )
}

#[cfg(test)]
pub mod test_support {
    /// An error the platform reports when a file is held by another process.
    pub fn sharing_violation() -> std::io::Error {
        std::io::Error::from_raw_os_error(
            windows_sys::Win32::Foundation::ERROR_SHARING_VIOLATION as i32,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::channel::{Channel, ChannelOptions, Role};
    use crate::protocol::files::{read_message_file, replace_file};
    use std::time::{Duration, Instant};

    /// Opens `path` the way Python's `open()` (the CRT) does: no delete sharing, so the file
    /// cannot be replaced while it is open.
    fn hold_like_python(path: &Path) -> File {
        OpenOptions::new()
            .read(true)
            .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE)
            .open(path)
            .unwrap()
    }

    #[test]
    fn a_replace_blocked_by_a_holder_fails_with_ebusy_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let (tmp, target) = (dir.path().join("out.tmp"), dir.path().join("out.json"));
        fs::write(&target, "[]").unwrap();
        let holder = hold_like_python(&target);
        let started = Instant::now();
        let err = replace_file(&tmp, &target, b"[1]", 0, Duration::from_millis(200)).unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(err.code(), "EBUSY");
        assert!(err.to_string().contains("out.json"), "{err}");
        assert!(!tmp.exists());
        drop(holder);
        assert_eq!(fs::read_to_string(&target).unwrap(), "[]");
    }

    #[test]
    fn a_replace_succeeds_once_the_holder_lets_go_within_the_patience() {
        let dir = tempfile::tempdir().unwrap();
        let (tmp, target) = (dir.path().join("out.tmp"), dir.path().join("out.json"));
        fs::write(&target, "[]").unwrap();
        let holder = hold_like_python(&target);
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            drop(holder);
        });
        replace_file(&tmp, &target, b"[1]", 0, Duration::from_secs(20)).unwrap();
        release.join().unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "[1]");
        assert!(!tmp.exists());
    }

    #[test]
    fn a_send_to_a_held_outbox_fails_with_ebusy_releases_the_lock_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let quick = ChannelOptions {
            lock_timeout: Duration::from_millis(150),
            ..ChannelOptions::default()
        };
        let front = Channel::open(dir.path(), Role::Frontend, quick).unwrap();
        let back = Channel::open(dir.path(), Role::Backend, ChannelOptions::default()).unwrap();
        front.send_event("first", serde_json::json!(1)).unwrap();
        let outbox = dir.path().join("frontend_to_backend.json");
        let holder = hold_like_python(&outbox);
        let err = front
            .send_event("second", serde_json::json!(2))
            .unwrap_err();
        assert_eq!(err.code(), "EBUSY");
        assert!(!dir.path().join("frontend_to_backend.lock").exists());
        assert!(!dir.path().join("frontend_to_backend.tmp").exists());
        drop(holder);
        front.send_event("third", serde_json::json!(3)).unwrap();
        let methods: Vec<_> = back
            .recv(usize::MAX)
            .unwrap()
            .into_iter()
            .map(|m| m.method.unwrap())
            .collect();
        assert_eq!(methods, ["first", "third"]);
    }

    #[test]
    fn our_reads_share_delete_so_others_may_rename_and_remove_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inbox.json");
        fs::write(&path, "[]").unwrap();
        let reading = open_for_reading(&path).unwrap();
        fs::rename(&path, dir.path().join("moved.json")).unwrap();
        fs::remove_file(dir.path().join("moved.json")).unwrap();
        drop(reading);
        let (_, is_file) = identity_at(dir.path()).unwrap();
        assert!(!is_file);
    }

    #[test]
    fn file_identity_tells_a_replaced_file_and_a_rewritten_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        fs::write(&path, "[]").unwrap();
        let (first, is_file) = identity_at(&path).unwrap();
        assert!(is_file);
        assert_eq!(
            identity_of(&open_for_reading(&path).unwrap()).unwrap(),
            first
        );
        fs::write(dir.path().join("g.json"), "[1]").unwrap();
        fs::rename(dir.path().join("g.json"), &path).unwrap();
        let (second, _) = identity_at(&path).unwrap();
        assert!(!second.same_file(&first));
        assert_eq!(second.size(), 3);
    }

    #[test]
    fn paths_with_spaces_non_ascii_letters_and_over_260_characters_work() {
        let base = tempfile::tempdir().unwrap();
        let mut dir = base.path().join("José Müller").join("AppData Local");
        while dir.as_os_str().len() < 300 {
            dir = dir.join("a fairly long directory name");
        }
        let front = Channel::open(&dir, Role::Frontend, ChannelOptions::default()).unwrap();
        let back = Channel::open(&dir, Role::Backend, ChannelOptions::default()).unwrap();
        front.send_event("ping", serde_json::json!("ü")).unwrap();
        let got = back.recv(usize::MAX).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].payload, serde_json::json!("ü"));
        let (bytes, _) = read_message_file(&dir.join("frontend_to_backend.json"), 1 << 20)
            .unwrap()
            .unwrap();
        assert!(String::from_utf8(bytes).unwrap().contains("\"ping\""));
    }

    #[test]
    fn process_liveness_host_name_and_privacy_of_a_fresh_directory() {
        assert!(process_alive(std::process::id()));
        assert!(!process_alive(0));
        assert!(!process_alive(0xFFFF_FFF0));
        assert!(!host_name().is_empty());
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(dir_privacy_problem(dir.path()).unwrap(), None);
    }

    #[test]
    fn win32_errors_carry_the_codes_node_uses() {
        let code = |n: u32| error_code(&io::Error::from_raw_os_error(n as i32));
        assert_eq!(code(ERROR_FILE_NOT_FOUND), Some("ENOENT"));
        assert_eq!(code(ERROR_SHARING_VIOLATION), Some("EBUSY"));
        assert_eq!(code(ERROR_ACCESS_DENIED), Some("EPERM"));
        assert_eq!(code(ERROR_DIRECTORY), Some("ENOTDIR"));
        assert!(is_sharing_conflict(&io::Error::from_raw_os_error(
            ERROR_SHARING_VIOLATION as i32
        )));
        assert!(!is_sharing_conflict(&io::Error::from_raw_os_error(
            ERROR_FILE_NOT_FOUND as i32
        )));
    }
}
