/* CReparo is a C target rather than a system-library module map so that SwiftPM tracks
 * include/reparo.h as a build input: a changed header (a new version, say) recompiles the
 * Swift code that imports it. This file, its one source, compiles the header as C. */
#include "reparo.h"
