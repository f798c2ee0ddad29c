"""rkt: placeholder until the rkt driver lands (see README)."""

from . import base


class Driver(base.Driver):
    name = "rkt"
    capabilities = dict(base.Driver.capabilities, run=False)

    @classmethod
    def probe(cls, paths):
        return base.Availability(cls.name, False,
                                 "the rkt driver is not implemented yet")
