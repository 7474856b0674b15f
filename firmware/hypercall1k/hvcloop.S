/* The same hypercall loop as firmware/hypercall (one source of truth). */
#include "../hypercall/hvcloop.S"
