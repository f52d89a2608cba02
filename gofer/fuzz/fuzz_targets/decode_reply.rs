//! Any bytes as a reply (what a client reads from a possibly compromised gofer).
#![no_main]

use gofer::protocol::Reply;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((reply, nfds)) = Reply::decode(data) {
        assert_eq!(nfds, reply.fd_count());
        assert_eq!(Reply::decode(&reply.encode()).expect("re-decode").0, reply);
    }
});
