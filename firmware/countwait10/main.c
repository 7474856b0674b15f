/* countwait10: firmware/countwait with a 10 ms wait (about 10^7 instructions in
 * neve), for `neve bench --quick` and the tests. */
#define WAIT_MS 10
#define NAME "countwait10"
#include "../countwait/main.c"
