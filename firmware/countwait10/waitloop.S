/* The same loop as firmware/countwait (one source of truth). */
#include "../countwait/waitloop.S"
