//! Shared helpers of the black-box integration tests (they only run binaries).
