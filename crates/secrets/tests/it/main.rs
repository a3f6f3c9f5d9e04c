//! One test binary: csp-secrets against Python's `cryptography.fernet`, and
//! with csp-store as csp uses them together (sealing, storing, rotating).

mod interop;
mod store;
