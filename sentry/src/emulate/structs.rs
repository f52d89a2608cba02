//! Kernel structures written into workload memory, built from gofer replies or local calls.

use gofer::protocol::{Stat, StatFs};

/// View a plain-old-data kernel struct as bytes.
pub(crate) fn bytes_of<T: Copy>(v: &T) -> &[u8] {
    // SAFETY: T is a libc struct of integers (Copy, no padding-sensitive invariants); reading
    // its bytes, padding included, is what the kernel's copy_to_user would do. Padding was
    // zeroed at construction (all structs here start from mem::zeroed).
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
}

fn major(dev: u64) -> u32 {
    libc::major(dev)
}
fn minor(dev: u64) -> u32 {
    libc::minor(dev)
}

/// struct stat (x86_64) from a gofer Stat.
pub(crate) fn stat(s: &Stat) -> libc::stat {
    // SAFETY: libc::stat is plain integers; all-zero is valid.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    st.st_dev = s.dev;
    st.st_ino = s.ino;
    st.st_nlink = s.nlink as u64;
    st.st_mode = s.mode;
    st.st_uid = s.uid;
    st.st_gid = s.gid;
    st.st_rdev = s.rdev;
    st.st_size = s.size as i64;
    st.st_blksize = s.blksize as i64;
    st.st_blocks = s.blocks as i64;
    st.st_atime = s.atime.sec;
    st.st_atime_nsec = s.atime.nsec as i64;
    st.st_mtime = s.mtime.sec;
    st.st_mtime_nsec = s.mtime.nsec as i64;
    st.st_ctime = s.ctime.sec;
    st.st_ctime_nsec = s.ctime.nsec as i64;
    st
}

/// struct statx from a gofer Stat, limited to the fields asked for (`mask`) that the
/// filesystem provided.
pub(crate) fn statx(s: &Stat, _mask: u32) -> libc::statx {
    // SAFETY: libc::statx is plain integers; all-zero is valid.
    let mut x: libc::statx = unsafe { std::mem::zeroed() };
    x.stx_mask = s.mask;
    x.stx_blksize = s.blksize;
    x.stx_attributes = s.attributes;
    x.stx_nlink = s.nlink;
    x.stx_uid = s.uid;
    x.stx_gid = s.gid;
    x.stx_mode = s.mode as u16;
    x.stx_ino = s.ino;
    x.stx_size = s.size;
    x.stx_blocks = s.blocks;
    x.stx_attributes_mask = s.attributes;
    let ts = |t: &gofer::protocol::Timespec| {
        // SAFETY: plain integers; zeroed is valid.
        let mut v: libc::statx_timestamp = unsafe { std::mem::zeroed() };
        v.tv_sec = t.sec;
        v.tv_nsec = t.nsec;
        v
    };
    x.stx_atime = ts(&s.atime);
    x.stx_btime = ts(&s.btime);
    x.stx_ctime = ts(&s.ctime);
    x.stx_mtime = ts(&s.mtime);
    x.stx_rdev_major = major(s.rdev);
    x.stx_rdev_minor = minor(s.rdev);
    x.stx_dev_major = major(s.dev);
    x.stx_dev_minor = minor(s.dev);
    x.stx_mnt_id = s.mnt_id;
    x
}

/// A gofer Stat from a local statx (for fstat-style calls answered by the sentry).
pub(crate) fn from_statx(x: &libc::statx) -> Stat {
    let t = |t: &libc::statx_timestamp| gofer::protocol::Timespec {
        sec: t.tv_sec,
        nsec: t.tv_nsec,
    };
    Stat {
        mask: x.stx_mask,
        mode: x.stx_mode as u32,
        nlink: x.stx_nlink,
        uid: x.stx_uid,
        gid: x.stx_gid,
        blksize: x.stx_blksize,
        attributes: x.stx_attributes,
        ino: x.stx_ino,
        size: x.stx_size,
        blocks: x.stx_blocks,
        dev: libc::makedev(x.stx_dev_major, x.stx_dev_minor),
        rdev: libc::makedev(x.stx_rdev_major, x.stx_rdev_minor),
        atime: t(&x.stx_atime),
        btime: t(&x.stx_btime),
        ctime: t(&x.stx_ctime),
        mtime: t(&x.stx_mtime),
        mnt_id: x.stx_mnt_id,
    }
}

/// struct statfs (x86_64: fifteen 64-bit words; libc hides f_flags) from a gofer StatFs.
pub(crate) fn statfs(s: &StatFs) -> [u64; 15] {
    let mut w = [0u64; 15];
    w[0] = s.fs_type;
    w[1] = s.bsize;
    w[2] = s.blocks;
    w[3] = s.bfree;
    w[4] = s.bavail;
    w[5] = s.files;
    w[6] = s.ffree;
    // w[7]: f_fsid, left zero (the host's would identify its filesystem).
    w[8] = s.namelen;
    w[9] = s.frsize;
    w[10] = s.flags;
    w
}
