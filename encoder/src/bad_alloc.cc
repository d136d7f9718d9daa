// The allocation entry points of the encoder's counting allocator (src/memory.rs), as ONNX
// Runtime calls them.
//
// ONNX Runtime's own CPU allocator reports an allocation it cannot make by throwing
// std::bad_alloc, and its callers are written for that: the exception unwinds to the session
// run (or session creation), which fails with an error. A custom allocator that returns a null
// pointer instead is not checked everywhere (ONNX Runtime 1.31 crashes on one), and a Rust
// function cannot throw a C++ exception. So these two functions, called only by ONNX Runtime,
// ask the Rust side for the block (which never unwinds) and throw when it refuses. No
// exception ever crosses a Rust frame.
#include <cstddef>
#include <new>

extern "C" void* ics_encoder_try_alloc(std::size_t size);

extern "C" void* ics_encoder_alloc(void* /* this */, std::size_t size) {
    void* p = ics_encoder_try_alloc(size);
    if (p == nullptr) throw std::bad_alloc();
    return p;
}

extern "C" void* ics_encoder_reserve(const void* /* this */, std::size_t size) {
    return ics_encoder_alloc(nullptr, size);
}
