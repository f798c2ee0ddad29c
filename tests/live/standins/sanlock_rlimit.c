/* LD_PRELOAD for sanlock's daemon, only on a host where root lacks
 * CAP_SYS_RESOURCE (this CI machine): sanlock's setup_limits() raises
 * RLIMIT_MEMLOCK and RLIMIT_RTPRIO to unlimited and exits when the kernel
 * refuses.  Here a refused raise of those two is let pass: the daemon runs
 * with the limits it was given (it is started with -l 0, no mlockall).
 * tests/live/setup-host builds it where it is needed; never on a real host. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/resource.h>

int setrlimit(__rlimit_resource_t resource, const struct rlimit *rlim)
{
    int (*real)(__rlimit_resource_t, const struct rlimit *) =
        dlsym(RTLD_NEXT, "setrlimit");
    int rv = real(resource, rlim);

    if (rv < 0 && errno == EPERM &&
        (resource == RLIMIT_MEMLOCK || resource == RLIMIT_RTPRIO))
        return 0;
    return rv;
}
