"""Lock files abandoned by a killed writer (PROTOCOL-EXTENSIONS.md, "Abandoned lock files").

A host killed in the middle of a send (Blender sends progress all the time while it renders)
leaves ``<outbox stem>.lock`` behind, holding its PID. The reference writer takes a lock file over
only once it is 5 s old, and each of its sends gives up after about 0.5 s: a restarted backend
could not send anything for those 5 s, and the answers it tried to send were lost. Like our Node
writers, we take over at once a lock file whose PID is not a running process of this host, and
only while holding our writers' OS lock (``<stem>.lock.flock``), so that two of our writers never
both judge and remove the same file.
"""

import os

from ._watch import fresh_size, is_remote_file_system

MAX_LOCK_BYTES = 64

if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import ctypes
    import msvcrt
    from ctypes import wintypes

    from ._win32 import CloseHandle as _CloseHandle
    from ._win32 import kernel32 as _kernel32

    _OpenProcess = _kernel32.OpenProcess
    _OpenProcess.argtypes = [wintypes.DWORD, wintypes.BOOL, wintypes.DWORD]
    _OpenProcess.restype = wintypes.HANDLE
    _GetExitCodeProcess = _kernel32.GetExitCodeProcess
    _GetExitCodeProcess.argtypes = [wintypes.HANDLE, ctypes.POINTER(wintypes.DWORD)]
    _GetCurrentProcess = _kernel32.GetCurrentProcess
    _GetCurrentProcess.argtypes = []
    _GetCurrentProcess.restype = wintypes.HANDLE
    _GetProcessTimes = _kernel32.GetProcessTimes
    _GetProcessTimes.argtypes = [wintypes.HANDLE] + [ctypes.POINTER(wintypes.FILETIME)] * 4
    _GetProcessTimes.restype = wintypes.BOOL
    _QUERY_LIMITED_INFORMATION = 0x1000
    _STILL_ACTIVE = 259
    _ERROR_ACCESS_DENIED = 5

    def process_running(pid):
        """Whether process ``pid`` runs on this host (one we may not query does)."""
        handle = _OpenProcess(_QUERY_LIMITED_INFORMATION, False, pid)
        if not handle:
            return ctypes.get_last_error() == _ERROR_ACCESS_DENIED
        try:
            code = wintypes.DWORD()
            return not _GetExitCodeProcess(handle, ctypes.byref(code)) or code.value == _STILL_ACTIVE
        finally:
            _CloseHandle(handle)

    def _try_os_lock(fd):
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

else:
    import fcntl

    def process_running(pid):
        """Whether process ``pid`` runs on this host: it exists and is not a zombie (killed but not
        reaped yet, it still answers ``kill(pid, 0)``)."""
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        try:
            with open("/proc/%d/stat" % pid, "rb") as stat:
                state = stat.read().rsplit(b")", 1)[1].split()[0]
            return state not in (b"Z", b"X")
        except (OSError, IndexError):
            return True  # no /proc (macOS): kill() said it exists

    def _try_os_lock(fd):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False


def own_start():
    """When this process started, as the OS tells it (the ``started`` stamp of an
    acknowledgement, PROTOCOL-EXTENSIONS.md): a writer on this host then knows a later process
    that reuses our PID from us. None where we cannot tell (macOS here)."""
    if os.name == "nt":  # pragma: no cover - exercised on Windows only
        created, exited, kernel, user = (wintypes.FILETIME() for _ in range(4))
        times = (ctypes.byref(created), ctypes.byref(exited), ctypes.byref(kernel), ctypes.byref(user))
        if not _GetProcessTimes(_GetCurrentProcess(), *times):
            return None
        return (created.dwHighDateTime << 32) | created.dwLowDateTime
    try:
        with open("/proc/self/stat", "rb") as stat:
            # Field 22, counted after the command name (which may hold spaces).
            return int(stat.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def read_small(path, limit=16 * 1024):
    """The bytes of a small file of the channel (a lock, an acknowledgement), read without
    following a link or waiting on a FIFO; None when it cannot be read or is over ``limit``."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    for _ in range(3):
        try:
            fd = os.open(path, flags)
        except OSError:
            return None
        try:
            # On a share a read stops at the cached size: a cut-off PID names another process.
            size = fresh_size(fd)
            data = os.read(fd, limit + 1)
        except OSError:
            return None
        finally:
            os.close(fd)
        if len(data) > limit:
            return None
        if len(data) >= size:
            return data
    return None  # cut off every time: never taken for the whole file


def _holder(lock_path):
    """The PID a lock file names; None when there is none (or it names none)."""
    text = read_small(lock_path, MAX_LOCK_BYTES)
    try:
        pid = int(text.strip()) if text else 0
    except ValueError:
        return None
    return pid if pid > 0 else None


def clear_abandoned_lock(outbox_path):
    """Removes ``outbox_path``'s lock file when the process it names no longer runs on this
    host. Returns whether it removed one. Never raises."""
    # On a share the PID may be another machine's: only a lock's age can say it was left behind
    # there, which the reference's writers judge themselves.
    if is_remote_file_system(os.path.dirname(os.path.abspath(outbox_path))):
        return False
    lock_path = os.path.splitext(outbox_path)[0] + ".lock"
    pid = _holder(lock_path)
    if pid is None or pid == os.getpid() or process_running(pid):
        return False
    # Read-only where that is enough to lock (closing a file opened for writing wakes watchers).
    access = os.O_RDWR if os.name == "nt" else os.O_RDONLY
    flags = access | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(lock_path + ".flock", flags, 0o600)
    except OSError:
        return False
    try:
        if not _try_os_lock(fd):
            return False  # one of our writers holds it: it judges the lock file itself
        # Judged again under the OS lock: the file may have been taken over and re-created.
        if _holder(lock_path) != pid:
            return False
        os.unlink(lock_path)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # releases the OS lock
