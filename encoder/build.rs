// Compiles src/bad_alloc.cc: the allocation entry points that let the counting allocator
// refuse an allocation the way ONNX Runtime expects (see the comment in that file).
fn main() {
    println!("cargo:rerun-if-changed=src/bad_alloc.cc");
    cc::Build::new()
        .cpp(true)
        .file("src/bad_alloc.cc")
        .compile("ics_encoder_bad_alloc");
}
