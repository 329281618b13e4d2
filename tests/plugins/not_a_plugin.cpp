// A shared library without deferq's entry points: deferq-worker must refuse it at start.
extern "C" [[gnu::visibility("default")]] int some_other_library_function() {
    return 1;
}
