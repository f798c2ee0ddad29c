"""Stand-in for nmstate's libnmstate.error (the base class vdsm may catch)."""


class NmstateError(Exception):
    pass


class NmstateNotSupportedError(NmstateError):
    pass
