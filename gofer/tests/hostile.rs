//! Hostile raw packets: every one gets an error reply, the server keeps serving, and no fd
//! leaks. One test function so the process-wide fd count is not disturbed by other tests.

mod common;

use std::os::fd::{AsFd, OwnedFd};

use common::*;
use gofer::protocol::{Handle, MsgId, Reply, Request, Target, HEADER_LEN, MAX_MESSAGE};
use gofer::server::ServerConfig;
use gofer::wire;

fn call_raw(sock: &OwnedFd, bytes: &[u8], fds: &[std::os::fd::BorrowedFd<'_>]) -> Reply {
    wire::send(sock.as_fd(), bytes, fds).expect("send");
    let mut buf = vec![0u8; MAX_MESSAGE];
    let pkt = wire::recv(sock.as_fd(), &mut buf)
        .expect("recv")
        .expect("server closed");
    assert!(pkt.fds.is_empty(), "error replies carry no fds");
    Reply::decode(&buf[..pkt.len]).expect("valid reply").0
}

fn header(id: u16, aux: u16, body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32).to_le_bytes().to_vec();
    v.extend_from_slice(&id.to_le_bytes());
    v.extend_from_slice(&aux.to_le_bytes());
    v.extend_from_slice(body);
    v
}

fn target_body(handle: u64, path: &[u8], follow: u8) -> Vec<u8> {
    let mut b = handle.to_le_bytes().to_vec();
    b.extend_from_slice(&(path.len() as u32).to_le_bytes());
    b.extend_from_slice(path);
    b.push(follow);
    b
}

fn errno_of(r: Reply) -> i32 {
    match r {
        Reply::Error { errno } => errno,
        other => panic!("expected an error reply, got {other:?}"),
    }
}

#[test]
fn hostile_packets_get_error_replies_and_leak_nothing() {
    let t = TempDir::new("hostile");
    std::fs::create_dir_all(t.join("d")).unwrap();
    std::fs::write(t.join("d/f"), b"x").unwrap();
    let (client_sock, server_sock) = wire::socketpair().unwrap();
    let server = gofer::server::Server::new(open_dir(t.path()), &ServerConfig::default()).unwrap();
    let fds_before = fd_count();
    let th = std::thread::spawn(move || {
        let mut server = server;
        let r = server.run(server_sock);
        (r, server.stats().clone(), server.handle_count())
    });
    let s = &client_sock;
    let mut expected_undecodable = 0;
    let bad = |bytes: &[u8], want: i32| {
        assert_eq!(errno_of(call_raw(s, bytes, &[])), want, "packet {bytes:?}");
    };
    // Framing.
    bad(&[1, 2, 3], libc::EBADMSG); // shorter than the header
    bad(
        &header(MsgId::Stats as u16, 0, b"")[..HEADER_LEN - 1],
        libc::EBADMSG,
    );
    let mut wrong_len = header(MsgId::Hello as u16, 0, &1u32.to_le_bytes());
    wrong_len[0] = 200; // declares 200 body bytes, has 4
    bad(&wrong_len, libc::EBADMSG);
    bad(&header(999, 0, b""), libc::ENOSYS);
    bad(&header(0, 0, b""), libc::ENOSYS);
    bad(&header(MsgId::Stats as u16, 7, b""), libc::EBADMSG); // reserved field set
    bad(&header(MsgId::Stats as u16, 0, b"x"), libc::EBADMSG); // trailing bytes
    bad(&header(MsgId::Hello as u16, 0, &[1, 0]), libc::EBADMSG); // truncated field
    expected_undecodable += 8;
    // Fields.
    let mut huge = 1u64.to_le_bytes().to_vec();
    huge.extend_from_slice(&u32::MAX.to_le_bytes()); // path length 4 GiB, nothing follows
    bad(&header(MsgId::StatAt as u16, 0, &huge), libc::ENAMETOOLONG);
    let mut long_path = target_body(1, &vec![b'a'; 5000], 1);
    long_path.truncate(long_path.len());
    bad(
        &header(MsgId::StatAt as u16, 0, &long_path),
        libc::ENAMETOOLONG,
    );
    bad(
        &header(MsgId::StatAt as u16, 0, &target_body(1, b"a\0b", 1)),
        libc::EINVAL,
    );
    bad(
        &header(MsgId::StatAt as u16, 0, &target_body(1, b"d", 2)),
        libc::EBADMSG,
    );
    let mut close = (u32::MAX).to_le_bytes().to_vec(); // 4 billion handles
    close.extend_from_slice(&[0; 16]);
    bad(&header(MsgId::Close as u16, 0, &close), libc::E2BIG);
    let mut xname = target_body(1, b"d/f", 1);
    xname.extend_from_slice(&3u32.to_le_bytes());
    xname.extend_from_slice(b"a\0b");
    xname.extend_from_slice(&10u32.to_le_bytes());
    bad(&header(MsgId::GetXattr as u16, 0, &xname), libc::EINVAL);
    expected_undecodable += 6;
    // Well-formed but hostile requests.
    let req = |r: Request| r.encode();
    bad(
        &req(Request::StatAt {
            at: Target::new(Handle(12345), "d"),
        }),
        libc::EBADF,
    );
    bad(
        &req(Request::StatAt {
            at: Target::new(Handle(0), "d"),
        }),
        libc::EBADF,
    );
    bad(
        &req(Request::Close {
            handles: vec![Handle::ROOT, Handle(77)],
        }),
        libc::EBADF,
    );
    bad(&req(Request::Hello { version: 0 }), libc::EPROTONOSUPPORT);
    let name_with_slash = |n: &str| Request::Mkdir {
        at: Target::new(Handle::ROOT, n),
        mode: 0o755,
        owner: gofer::protocol::Owner::UNCHANGED,
    };
    bad(&req(name_with_slash("d/..")), libc::EEXIST);
    bad(&req(name_with_slash(&"n".repeat(300))), libc::ENAMETOOLONG);
    bad(
        &req(Request::Open {
            at: Target::new(Handle::ROOT, "d/f"),
            flags: 0x4000_0000,
            mode: 0,
            owner: gofer::protocol::Owner::UNCHANGED,
        }),
        libc::EINVAL,
    );
    bad(
        &req(Request::Unlink {
            at: Target::new(Handle::ROOT, "d/f"),
            flags: 0x1,
        }),
        libc::EINVAL,
    );
    bad(
        &req(Request::SetXattr {
            at: Target::new(Handle::ROOT, "d/f"),
            name: b"user.x".to_vec(),
            value: vec![],
            flags: 0xff,
        }),
        libc::EINVAL,
    );
    bad(
        &req(Request::DonateDir {
            at: Target::new(Handle::ROOT, "d"),
        }),
        libc::EPERM,
    );
    // Packets carrying fds (requests never do): refused, and the fds are closed.
    let devnull = std::fs::File::open("/dev/null").unwrap();
    let many: Vec<_> = (0..12).map(|_| devnull.as_fd()).collect();
    for n in [1, 3, 12] {
        let r = call_raw(s, &req(Request::Stats), &many[..n]);
        assert_eq!(errno_of(r), libc::EBADMSG);
        expected_undecodable += 1;
    }
    // An oversized packet.
    let big = header(MsgId::Stats as u16, 0, &vec![0u8; MAX_MESSAGE + 100]);
    assert_eq!(errno_of(call_raw(s, &big, &[])), libc::EMSGSIZE);
    expected_undecodable += 1;
    // Random garbage.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..2000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 64) as usize;
        let mut p: Vec<u8> = (0..len).map(|i| (x >> (i % 8 * 8)) as u8).collect();
        if len >= HEADER_LEN {
            // Mostly valid headers so the body decoders get exercised.
            let body = (len - HEADER_LEN) as u32;
            p[0..4].copy_from_slice(&body.to_le_bytes());
            p[4..6].copy_from_slice(&((x >> 40) as u16 % 24).to_le_bytes());
            p[6..8].copy_from_slice(&[0, 0]);
        }
        if p.is_empty() {
            continue; // a zero-length packet reads as the peer closing
        }
        wire::send(s.as_fd(), &p, &[]).unwrap();
        let mut buf = vec![0u8; MAX_MESSAGE];
        let pkt = wire::recv(s.as_fd(), &mut buf)
            .unwrap()
            .expect("server still up");
        Reply::decode(&buf[..pkt.len]).expect("a valid reply to garbage");
    }
    // Still fully working afterwards.
    let c = gofer::client::Client::new(client_sock);
    assert_eq!(c.stat(Target::new(Handle::ROOT, "d/f")).unwrap().size, 1);
    let stats = c.stats().unwrap();
    let undecodable = stats.iter().find(|(id, _)| *id == 0).map(|x| x.1).unwrap();
    assert!(
        undecodable >= expected_undecodable,
        "{undecodable} < {expected_undecodable}"
    );
    drop(c);
    let (r, _stats, handles) = th.join().unwrap();
    r.unwrap();
    assert_eq!(handles, 0, "handles leaked");
    drop(devnull);
    // The server's socket end is closed by now too; everything else must be as before.
    assert_eq!(
        fd_count(),
        fds_before - 3,
        "fd leak in the server (socket ends and root fd are gone)"
    );
}
