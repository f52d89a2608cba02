//! Any bytes: decoding never panics, and whatever decodes re-encodes to the same request.
#![no_main]

use gofer::protocol::Request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = Request::decode(data) {
        let again = req.encode();
        assert_eq!(Request::decode(&again).expect("re-decode"), req);
    }
});
