// The functions are inline in the header; SwiftPM wants a source file in a C target.
#include "CAllocator.h"
