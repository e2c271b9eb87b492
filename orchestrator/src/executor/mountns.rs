//! The `namespace` sandbox's mount namespace, built in this process.
//!
//! The view is the one `bwrap --bind /X /X … --dev-bind /dev /dev --proc /proc --bind <workspace>
//! /data` builds (bubblewrap 0.8, as root): a tmpfs root holding recursive binds of the host's
//! top-level directories and files, its top-level symlinks, the host's `/dev` and `/proc` (whose
//! writable `sys`, `sysrq-trigger`, `irq` and `bus` are made read-only), and the workspace at
//! `/data`;
//! every mount in it `nosuid`, and all but `/dev` and its submounts `nodev`; mounts made on the
//! host later still appear (the root is a slave of the host's), none made inside leak out.
//!
//! Running bubblewrap for it cost a run about 7 ms (three `exec`s: bwrap, a shell to report the
//! holder's pid, `sleep`; and bwrap re-reads the mount table for every bind): half of a short
//! run's fixed cost. A thread of our own makes the same mounts in well under a millisecond. It
//! leaves the namespace by exiting: an open descriptor of the namespace keeps it, and its mounts,
//! alive without any process in it, and steps join it with `setns` as before.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Where the new root is assembled, and where the host's root is reachable meanwhile: bubblewrap's
/// names, under a tmpfs mounted on `/tmp` (only inside the new namespace).
const BASE: &str = "/tmp";
const NEW_ROOT: &str = "/newroot";
const OLD_ROOT: &str = "/oldroot";
/// Top-level entries of the host's root that the view does not take from it.
const NOT_BOUND: [&[u8]; 3] = [b"proc", b"dev", b"data"];
/// Parts of `/proc` made read-only, as bubblewrap's `--proc` does: writing them can reconfigure
/// or stop the machine.
const PROC_COVERS: [&str; 4] = ["sys", "sysrq-trigger", "irq", "bus"];

/// Builds the view of `workspace` at `/data` in a new mount namespace and returns a descriptor of
/// that namespace (`/proc/<tid>/ns/mnt` of the thread that built it).
pub fn build(workspace: &Path) -> Result<OwnedFd, String> {
    let workspace = workspace.to_path_buf();
    // A thread of its own: unsharing the mount namespace also unshares the thread's root and
    // working directory (CLONE_FS), so the rest of the process never sees the change, and the
    // namespace is left when the thread ends.
    std::thread::Builder::new()
        .name("testloop-mountns".to_owned())
        .spawn(move || build_here(&workspace))
        .map_err(|error| format!("cannot start a thread to build the namespace: {error}"))?
        .join()
        .map_err(|_| "the thread building the namespace panicked".to_owned())?
}

fn build_here(workspace: &Path) -> Result<OwnedFd, String> {
    // SAFETY: unshare takes flags only; it changes this thread's namespace and fs info.
    check(
        unsafe { libc::unshare(libc::CLONE_NEWNS) },
        "unshare the mount namespace",
    )?;
    let namespace = open_namespace()?;
    // Receive the host's later mounts, send none back.
    mount(
        None,
        "/",
        None,
        libc::MS_SLAVE | libc::MS_REC,
        "make / a slave",
    )?;

    // A tmpfs to build in; the host's root moves under it, at OLD_ROOT.
    mount(
        Some("tmpfs"),
        BASE,
        Some("tmpfs"),
        libc::MS_NODEV | libc::MS_NOSUID,
        "mount the tmpfs to build in",
    )?;
    chdir(BASE)?;
    mkdir(format!("{BASE}{NEW_ROOT}"))?;
    // A mount point of its own, so that it can become the root.
    mount(
        Some(&format!("{BASE}{NEW_ROOT}")),
        &format!("{BASE}{NEW_ROOT}"),
        None,
        libc::MS_BIND | libc::MS_REC,
        "bind the new root",
    )?;
    mkdir(format!("{BASE}{OLD_ROOT}"))?;
    pivot_root(BASE, &format!("{BASE}{OLD_ROOT}"))?;
    chdir("/")?;

    let mut entries: Vec<OsString> = std::fs::read_dir(OLD_ROOT)
        .map_err(|error| format!("cannot list /: {error}"))?
        .flatten()
        .map(|entry| entry.file_name())
        .filter(|name| !NOT_BOUND.contains(&name.as_bytes()))
        .collect();
    entries.sort();
    for name in &entries {
        let source = Path::new(OLD_ROOT).join(name);
        let target = Path::new(NEW_ROOT).join(name);
        match std::fs::read_link(&source) {
            Ok(link) => symlink(&link, &target)?,
            Err(_) => bind(&source, &target, libc::MS_REC)?,
        }
    }
    bind(
        Path::new(&format!("{OLD_ROOT}/dev")),
        Path::new(&format!("{NEW_ROOT}/dev")),
        libc::MS_REC,
    )?;
    // We share the host's pid namespace, so the host's procfs, bound without its submounts.
    let proc_dir = format!("{NEW_ROOT}/proc");
    bind(
        Path::new(&format!("{OLD_ROOT}/proc")),
        Path::new(&proc_dir),
        0,
    )?;
    for cover in PROC_COVERS {
        let path = format!("{proc_dir}/{cover}");
        // Covered only where writing is allowed at all, as bubblewrap decides (the sysctl root,
        // for one, answers "no" even to root, so /proc/sys stays as it is).
        let path_c = c_path(&path)?;
        // SAFETY: access with a valid C string.
        if unsafe { libc::access(path_c.as_ptr(), libc::W_OK) } == 0 {
            bind(Path::new(&path), Path::new(&path), 0)?;
        }
    }
    let workspace_source =
        Path::new(OLD_ROOT).join(workspace.strip_prefix("/").unwrap_or(workspace));
    bind(
        &workspace_source,
        Path::new(&format!("{NEW_ROOT}{}", super::WORKSPACE_MOUNT)),
        libc::MS_REC,
    )?;
    apply_flags()?;

    // Drop the host's root and make the new one the root, as bubblewrap does.
    mount(
        Some(OLD_ROOT),
        OLD_ROOT,
        None,
        libc::MS_REC | libc::MS_PRIVATE,
        "make the old root private",
    )?;
    umount(OLD_ROOT)?;
    let old = open_dir("/")?;
    chdir(NEW_ROOT)?;
    pivot_root(".", ".")?;
    // SAFETY: fchdir on a directory descriptor we own.
    check(
        unsafe { libc::fchdir(std::os::fd::AsRawFd::as_raw_fd(&old)) },
        "return to the old root",
    )?;
    umount(".")?;
    chdir("/")?;
    Ok(namespace)
}

/// Remounts every mount of the new root with the flags bubblewrap gives binds: `nosuid`
/// everywhere, `nodev` outside `/dev`, read-only on the `/proc` covers; a bind does not take new
/// flags from the mount call that makes it, nor pass them to its submounts.
fn apply_flags() -> Result<(), String> {
    // The host's /proc, under the old root until the end: this thread's view of the mounts, with
    // mount points as seen from the root being built in (`/newroot/...`).
    let table = std::fs::read(format!("{OLD_ROOT}/proc/thread-self/mountinfo"))
        .map_err(|error| format!("cannot read the mount table: {error}"))?;
    let dev = format!("{NEW_ROOT}/dev");
    let proc_dir = format!("{NEW_ROOT}/proc");
    for line in table.split(|byte| *byte == b'\n') {
        let fields: Vec<&[u8]> = line.split(|byte| *byte == b' ').collect();
        let (Some(point), Some(options)) = (fields.get(4), fields.get(5)) else {
            continue;
        };
        let point = unescape(point);
        let point = Path::new(OsStr::from_bytes(&point));
        if !point.starts_with(NEW_ROOT) || point == Path::new(NEW_ROOT) {
            continue;
        }
        let current = mount_flags(options);
        let mut wanted = current | libc::MS_NOSUID;
        if !point.starts_with(&dev) {
            wanted |= libc::MS_NODEV;
        }
        if PROC_COVERS
            .iter()
            .any(|cover| point == Path::new(&format!("{proc_dir}/{cover}")))
        {
            wanted |= libc::MS_RDONLY;
        }
        if wanted != current {
            let target = c_path(point)?;
            // SAFETY: a remount of an existing mount point, with valid C strings.
            let result = unsafe {
                libc::mount(
                    c"none".as_ptr(),
                    target.as_ptr(),
                    std::ptr::null(),
                    libc::MS_SILENT | libc::MS_BIND | libc::MS_REMOUNT | wanted,
                    std::ptr::null(),
                )
            };
            // As bubblewrap: a mount we cannot read is one the steps cannot use either.
            if result != 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EACCES) {
                return Err(format!(
                    "cannot set the flags of {}: {}",
                    point.display(),
                    io::Error::last_os_error()
                ));
            }
        }
    }
    Ok(())
}

/// The per-mount flags of a mountinfo options field (`rw,nosuid,relatime`).
fn mount_flags(options: &[u8]) -> libc::c_ulong {
    options
        .split(|byte| *byte == b',')
        .map(|option| match option {
            b"ro" => libc::MS_RDONLY,
            b"nosuid" => libc::MS_NOSUID,
            b"nodev" => libc::MS_NODEV,
            b"noexec" => libc::MS_NOEXEC,
            b"noatime" => libc::MS_NOATIME,
            b"nodiratime" => libc::MS_NODIRATIME,
            b"relatime" => libc::MS_RELATIME,
            _ => 0,
        })
        .fold(0, |flags, flag| flags | flag)
}

/// Mount points in mountinfo escape space, tab, newline and backslash as `\ooo`.
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut index = 0;
    while index < field.len() {
        if field[index] == b'\\'
            && let Some(digits) = field.get(index + 1..index + 4)
            && digits.iter().all(|digit| (b'0'..=b'7').contains(digit))
        {
            out.push(
                digits
                    .iter()
                    .fold(0u8, |value, digit| value.wrapping_mul(8) + (digit - b'0')),
            );
            index += 4;
        } else {
            out.push(field[index]);
            index += 1;
        }
    }
    out
}

fn check(result: libc::c_int, what: &str) -> Result<(), String> {
    if result == 0 {
        Ok(())
    } else {
        Err(format!("cannot {what}: {}", io::Error::last_os_error()))
    }
}

fn c_path(path: impl AsRef<OsStr>) -> Result<CString, String> {
    let path = path.as_ref();
    CString::new(path.as_bytes().to_vec())
        .map_err(|_| format!("{} contains a NUL byte", Path::new(path).display()))
}

fn mount(
    source: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    what: &str,
) -> Result<(), String> {
    let source = source.map(c_path).transpose()?;
    let fstype = fstype.map(c_path).transpose()?;
    let target = c_path(target)?;
    // SAFETY: valid C strings or null pointers, no data argument.
    let result = unsafe {
        libc::mount(
            source.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            target.as_ptr(),
            fstype.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            flags | libc::MS_SILENT,
            std::ptr::null(),
        )
    };
    check(result, what)
}

/// Binds `source` at `target`, creating `target` as a directory or an empty file to match.
fn bind(source: &Path, target: &Path, flags: libc::c_ulong) -> Result<(), String> {
    if source != target {
        if source.is_dir() {
            mkdir(target)?;
        } else {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(target)
                .map_err(|error| format!("cannot create {}: {error}", target.display()))?;
        }
    }
    let source_c = c_path(source)?;
    let target_c = c_path(target)?;
    // SAFETY: valid C strings, a bind mount with no data.
    let result = unsafe {
        libc::mount(
            source_c.as_ptr(),
            target_c.as_ptr(),
            std::ptr::null(),
            libc::MS_SILENT | libc::MS_BIND | flags,
            std::ptr::null(),
        )
    };
    check(
        result,
        &format!("bind {} at {}", source.display(), target.display()),
    )
}

fn mkdir(path: impl AsRef<Path>) -> Result<(), String> {
    let path = path.as_ref();
    match std::fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(format!("cannot create {}: {error}", path.display())),
    }
}

fn symlink(link: &Path, target: &Path) -> Result<(), String> {
    std::os::unix::fs::symlink(link, target)
        .map_err(|error| format!("cannot create the symlink {}: {error}", target.display()))
}

fn chdir(path: &str) -> Result<(), String> {
    let path_c = c_path(path)?;
    // SAFETY: a valid C string.
    check(
        unsafe { libc::chdir(path_c.as_ptr()) },
        &format!("enter {path}"),
    )
}

fn umount(path: &str) -> Result<(), String> {
    let path_c = c_path(path)?;
    // SAFETY: a valid C string.
    check(
        unsafe { libc::umount2(path_c.as_ptr(), libc::MNT_DETACH) },
        &format!("unmount {path}"),
    )
}

fn pivot_root(new_root: &str, put_old: &str) -> Result<(), String> {
    let new_c = c_path(new_root)?;
    let old_c = c_path(put_old)?;
    // SAFETY: pivot_root takes two valid C strings; it has no libc wrapper.
    let result = unsafe { libc::syscall(libc::SYS_pivot_root, new_c.as_ptr(), old_c.as_ptr()) };
    check(
        if result == 0 { 0 } else { -1 },
        &format!("pivot the root to {new_root}"),
    )
}

fn open_dir(path: &str) -> Result<OwnedFd, String> {
    let path_c = c_path(path)?;
    // SAFETY: open with a valid C string; the descriptor is owned from here.
    let fd = unsafe {
        libc::open(
            path_c.as_ptr(),
            libc::O_DIRECTORY | libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(format!(
            "cannot open {path}: {}",
            io::Error::last_os_error()
        ));
    }
    // SAFETY: the kernel just gave us this descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// This thread's mount namespace: opened right after unsharing, while the host's `/proc` is in
/// view.
fn open_namespace() -> Result<OwnedFd, String> {
    let path = c_path("/proc/thread-self/ns/mnt")?;
    // SAFETY: open with a valid C string; the descriptor is owned from here.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(format!(
            "cannot open the new mount namespace: {}",
            io::Error::last_os_error()
        ));
    }
    // SAFETY: the kernel just gave us this descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_fields_are_unescaped_and_flags_read() {
        assert_eq!(unescape(br"/a\040b\134c\x"), b"/a b\\c\\x".to_vec());
        assert_eq!(
            mount_flags(b"ro,nosuid,nodev,relatime"),
            libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_RELATIME
        );
    }
}
