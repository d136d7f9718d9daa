//! Without a loadable ONNX Runtime library the trainer reports a clear error (ort itself would
//! panic). Its own test binary: the library path is read once per process.

use ics_train::onnx::runtime;

#[test]
fn missing_library_is_an_error_not_a_panic() {
    std::env::set_var(runtime::LIBRARY_ENV, "/nonexistent/libonnxruntime.so");
    let err = runtime::init().unwrap_err().to_string();
    assert!(
        err.contains("/nonexistent/libonnxruntime.so") && err.contains("not found"),
        "{err}"
    );
    // Sessions fail the same way, and the failure is remembered.
    let err = runtime::session(b"", 1).unwrap_err().to_string();
    assert!(err.contains("not found"), "{err}");
}
