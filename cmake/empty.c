/* Anchor for libbertstudio.so, whose code comes from the engine modules
 * (linked whole-archive); a shared library target needs one source. */
typedef int bs_shared_library_anchor;
