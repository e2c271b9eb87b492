//! Support for end-to-end tests that drive the real `testloop` binary.
